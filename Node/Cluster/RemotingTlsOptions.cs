using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography.X509Certificates;

namespace ClusterQueue.Node.Cluster;

/// <summary>
/// TLS for the members' remoting (ClusterQueue:Cluster:Tls), through Akka's own (<c>RemoteOptions.EnableSsl</c>): off
/// unless a certificate is given. Both sides of every connection show their certificate (mutual TLS). A peer's is
/// trusted when it chains to a root this machine trusts, or, with <see cref="TrustedThumbprints"/>, only when it is one
/// of those: the way to run on a certificate of the cluster's own, self-signed or from a private authority.
/// </summary>
public sealed class RemotingTlsOptions
{
    /// <summary>A PKCS#12 (.pfx) file with this member's certificate and its private key.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The password of <see cref="CertificatePath"/>, if it has one.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>SHA-1 thumbprints (hex) of the only certificates a peer may show; none: any that chains to a trusted root.</summary>
    public string[] TrustedThumbprints { get; set; } = [];

    public bool Enabled => !string.IsNullOrEmpty(CertificatePath);

    /// <summary>The certificate from <see cref="CertificatePath"/>, with its key.</summary>
    public X509Certificate2 LoadCertificate() => X509CertificateLoader.LoadPkcs12FromFile(CertificatePath!, CertificatePassword);

    public IEnumerable<ValidationResult> Validate()
    {
        if (CertificatePath is not null && !File.Exists(CertificatePath))
        {
            yield return new ValidationResult($"ClusterQueue:Cluster:Tls:CertificatePath '{CertificatePath}' is not a file.", [nameof(CertificatePath)]);
        }

        if (TrustedThumbprints.Length > 0 && !Enabled)
        {
            yield return new ValidationResult("ClusterQueue:Cluster:Tls:TrustedThumbprints needs ClusterQueue:Cluster:Tls:CertificatePath: TLS is off without a certificate.", [nameof(TrustedThumbprints)]);
        }

        foreach (var thumbprint in TrustedThumbprints.Where(t => t.Length != 40 || !t.All(char.IsAsciiHexDigit)))
        {
            yield return new ValidationResult($"ClusterQueue:Cluster:Tls:TrustedThumbprints has '{thumbprint}'; each must be 40 hex digits (a SHA-1 thumbprint).", [nameof(TrustedThumbprints)]);
        }
    }
}
