using System.Net;
using WsWeb.Proxy.Certificates;

namespace WsWeb.Certificates;

/// <summary>The CA downloads (mitmproxy's mitm.it) and a plain onboarding page until the dashboard lands.</summary>
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

        app.MapGet("/onboarding", (CertificateAuthority ca, WsWeb.Proxy.ProxyOptions options) =>
        {
            var html = $$"""
                <!doctype html>
                <html lang="en"><head><meta charset="utf-8"><title>WsWeb — trust the CA</title>
                <style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;line-height:1.5}code,pre{background:#f3f3f3;padding:.1rem .3rem}</style></head>
                <body>
                <h1>WsWeb</h1>
                <p>Proxy: <code>{{WebUtility.HtmlEncode(options.ListenHost)}}:{{options.ListenPort}}</code>. CA: <code>{{WebUtility.HtmlEncode(ca.Certificate.Subject)}}</code>, SHA-256 <code>{{ca.Certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256)}}</code>.</p>
                <p>Download the CA: <a href="/cert/pem">PEM</a> · <a href="/cert/cer">CER</a> · <a href="/cert/p12">P12</a></p>
                <pre>curl --proxy http://{{options.ListenHost}}:{{options.ListenPort}} --cacert wsweb-ca-cert.pem https://example.com/</pre>
                </body></html>
                """;
            return TypedResults.Content(html, "text/html; charset=utf-8");
        }).ExcludeFromDescription();
        return app;
    }
}
