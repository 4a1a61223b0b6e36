using WsWeb.Proxy.Certificates;

namespace WsWeb.Certificates;

/// <summary>The CA downloads (mitmproxy's mitm.it); the dashboard's Onboarding page links to them.</summary>
internal static class CertificateDownloads
{
    public static IEndpointRouteBuilder MapCertificateDownloads(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/cert").WithTags("Certificates");
        group.MapGet("/pem", (CertificateAuthority ca) => TypedResults.File(ca.ExportPem(), "application/x-pem-file", "wsweb-ca-cert.pem"))
            .WithSummary("The CA certificate as PEM (Linux, macOS, Firefox, curl --cacert, NODE_EXTRA_CA_CERTS).");
        group.MapGet("/cer", (CertificateAuthority ca) => TypedResults.File(ca.ExportCer(), "application/pkix-cert", "wsweb-ca-cert.cer"))
            .WithSummary("The CA certificate as DER (Windows, Android).");
        group.MapGet("/p12", (CertificateAuthority ca) => TypedResults.File(ca.ExportP12(), "application/x-pkcs12", "wsweb-ca-cert.p12"))
            .WithSummary("The CA certificate as PKCS#12 without a private key (iOS, some Windows tools).");

        return app;
    }
}
