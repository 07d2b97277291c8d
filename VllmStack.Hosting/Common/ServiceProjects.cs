using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Common;

internal static class ServiceProjects
{
    /// <summary>
    /// One of our services as a project resource. They speak plain HTTP on loopback (on a cluster TLS ends at the
    /// ingress), so no developer certificate is handed to them — and Aspire has no untrusted certificate to warn about.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddServiceProject<TProject>(this IDistributedApplicationBuilder builder, string name)
        where TProject : IProjectMetadata, new() =>
#pragma warning disable ASPIRECERTIFICATES001 // Aspire 13.6 marks its certificate API experimental; it is the only way to opt out.
        builder.AddProject<TProject>(name).WithoutHttpsCertificate();
#pragma warning restore ASPIRECERTIFICATES001
}
