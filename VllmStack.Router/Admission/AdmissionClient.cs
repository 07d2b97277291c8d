using System.Globalization;
using VllmStack.Router.Configuration;
using VllmStack.Router.Forwarding;

namespace VllmStack.Router.Admission;

/// <summary>Who a request is from, how it ranks among that client's requests and what it may cost, for <see cref="AdmissionGate"/>.</summary>
public static class AdmissionClient
{
    public static AdmissionTicket Ticket(HttpContext context, ClientRequest request, RouterOptions options)
    {
        var inspected = request.Inspected;
        var priority = context.Request.Headers.TryGetValue(options.Admission.PriorityHeader, out var header)
            && int.TryParse(header.ToString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var fromHeader)
            ? fromHeader
            : inspected.Priority ?? 0;
        // OpenAI's estimate of a request's tokens before tokenizing: a token per 4 characters, plus the output it may produce.
        var cost = (int)Math.Min(int.MaxValue, request.JsonBody.Length / 4L + Math.Max(0, inspected.MaxTokens ?? 0));
        return new AdmissionTicket(Key(context, options.SessionKey, options.ApiKeys is { Length: > 0 }), priority, cost);
    }

    /// <summary>
    /// The client a request counts against: its API key when the router checks keys (<c>--api-keys</c>; without that
    /// check any client could claim any key, and OpenAI SDK users often all send the same placeholder), else its session
    /// header (<see cref="RouterOptions.SessionKey"/>), else its address.
    /// </summary>
    public static string Key(HttpContext context, string sessionHeader, bool keysChecked)
    {
        var headers = context.Request.Headers;
        if (keysChecked && headers.Authorization.ToString() is { Length: > 0 } key)
        {
            return "key:" + key;
        }
        if (headers.TryGetValue(sessionHeader, out var session) && session.ToString() is { Length: > 0 } sessionKey)
        {
            return "session:" + sessionKey;
        }
        return "address:" + context.Connection.RemoteIpAddress;
    }
}
