using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Http;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// IRSA on EKS gives a pod a web-identity token file and a role, and the AWS SDK trades the token for credentials
/// with STS (AssumeRoleWithWebIdentity). That path loads an assembly at run time, so it is proved end to end: a node
/// process with only the token file and role (no keys), STS answered by a loopback server, SQS by the emulator.
/// </summary>
public sealed class WebIdentityTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>
{
    [Fact]
    public async Task NodeWithOnlyAWebIdentityToken_GetsCredentialsFromSts_AndCreatesItsQueue()
    {
        using var directory = new TempDirectory();
        var tokenFile = directory.File("token");
        await File.WriteAllTextAsync(tokenFile, "a-projected-service-account-token");
        var stsCalls = new ConcurrentQueue<string>();
        var (sts, stsAddress) = await LoopbackServer.StartAsync(async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            stsCalls.Enqueue(await reader.ReadToEndAsync());
            context.Response.ContentType = "text/xml";
            await context.Response.WriteAsync(AssumeRoleResponse);
        });
        await using var _ = sts;

        var settings = SqsNode.ProcessSettings(emulator.Endpoint, SqsNode.UniquePrefix());
        settings.Remove("AWS_ACCESS_KEY_ID");
        settings.Remove("AWS_SECRET_ACCESS_KEY");
        settings["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile;
        settings["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/clusterqueue";
        settings["AWS_REGION"] = "us-east-1";
        settings["AWS_ENDPOINT_URL_STS"] = stsAddress.ToString();
        await using var node = await NodeProcess.StartAsync(
            directory.File("node.db"), settings, unset: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]);

        using var put = await node.Client.PutAsJsonAsync("/v1/groups/irsa", new { ratePerSecond = 1, burst = 1, maxConcurrency = 1, target = new { url = "http://127.0.0.1:9/unused" } });

        Assert.True(put.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)put.StatusCode}: {await put.Content.ReadAsStringAsync()}\n{node.Output}");
        var call = Assert.Single(stsCalls.Distinct());
        Assert.Contains("Action=AssumeRoleWithWebIdentity", call, StringComparison.Ordinal);
        Assert.Contains("WebIdentityToken=a-projected-service-account-token", call, StringComparison.Ordinal);
    }

    private const string AssumeRoleResponse = """
        <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <AssumeRoleWithWebIdentityResult>
            <Credentials>
              <AccessKeyId>ASIATESTWEBIDENTITY</AccessKeyId>
              <SecretAccessKey>web-identity-secret</SecretAccessKey>
              <SessionToken>web-identity-session</SessionToken>
              <Expiration>2099-01-01T00:00:00Z</Expiration>
            </Credentials>
            <SubjectFromWebIdentityToken>system:serviceaccount:clusterqueue:clusterqueue</SubjectFromWebIdentityToken>
            <AssumedRoleUser>
              <Arn>arn:aws:sts::123456789012:assumed-role/clusterqueue/session</Arn>
              <AssumedRoleId>AROATEST:session</AssumedRoleId>
            </AssumedRoleUser>
          </AssumeRoleWithWebIdentityResult>
          <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
        </AssumeRoleWithWebIdentityResponse>
        """;
}
