# ClusterQueue node image.
#   docker build -t clusterqueue:dev .
#   docker run -p 8080:8080 -v cq-data:/data clusterqueue:dev     # no configuration: one embedded node
# Without ClusterQueue__AdminToken the admin API (/v1) answers loopback clients only, i.e. from inside the container;
# pass -e ClusterQueue__AdminToken=... to manage groups through the published port.
# Tags are pinned to the .NET major.minor: rebuilds get patch releases, never another .NET version.

# The build stage runs on the builder's own platform (no emulated SDK for an arm64 image) and publishes for the
# target's architecture: only that architecture's native SQLite library goes into the image (7 MB instead of 73 MB).
FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TARGETARCH
WORKDIR /src

# Project files first: the restore layer is reused until a csproj or the shared build properties change.
COPY Directory.Build.props ./
COPY Contracts/ClusterQueue.Contracts.csproj Contracts/
COPY Node/ClusterQueue.Node.csproj Node/
RUN dotnet restore Node/ClusterQueue.Node.csproj -a $TARGETARCH

COPY Contracts/ Contracts/
COPY Node/ Node/
# Framework-dependent (the runtime image has ASP.NET Core); no apphost, since the image starts the node with `dotnet`.
RUN dotnet publish Node/ClusterQueue.Node.csproj -c Release -o /app --no-restore -a $TARGETARCH -p:UseAppHost=false


FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime

# The embedded store needs a directory the non-root user can write; a volume so the data outlives the container.
RUN mkdir /data && chown "$APP_UID:$APP_UID" /data
VOLUME /data

WORKDIR /app
COPY --from=build /app ./

# Without ASPNETCORE_HTTP_PORTS (or urls) the node binds to loopback only, which is unreachable from outside the
# container; the base image sets it too, but the node's behaviour depends on it, so it is stated here.
ENV ASPNETCORE_HTTP_PORTS=8080
# The embedded database in the volume above: the app user cannot write under /app.
ENV ClusterQueue__Sqlite__Path=/data/clusterqueue.db
# Workstation GC: on two cores it took about 1.4x the ingest rate of server GC (the project's default) at the same
# memory, side by side; a pod gets one or two cores. Set DOTNET_gcServer=1 for a node given many cores.
ENV DOTNET_gcServer=0

# The image's built-in unprivileged user (numeric, so Kubernetes can check runAsNonRoot).
USER $APP_UID
EXPOSE 8080
ENTRYPOINT ["dotnet", "ClusterQueue.Node.dll"]
