namespace VllmStack.Router.Health;

/// <summary>
/// The engine-side failures the router holds against an engine. Anything else — a complete answer of any status
/// below 500, a request the router could not build or send, a client that left — is not the engine's failure.
/// </summary>
public enum EngineFailureKind
{
    /// <summary>The connection could not be opened (refused, unreachable, connect timeout, DNS).</summary>
    ConnectFailure,

    /// <summary>The connection broke before the response headers arrived.</summary>
    ResetBeforeHeaders,

    /// <summary>No response headers within <c>Forwarding:ResponseHeadersTimeout</c>.</summary>
    ResponseHeadersTimeout,

    /// <summary>A complete 502, 503 or 504 answer: the engine (or what fronts it) could not serve.</summary>
    GatewayStatus,

    /// <summary>A complete 5xx answer other than 502/503/504; counts only towards <c>Consecutive5xx</c>.</summary>
    ServerErrorStatus,

    /// <summary>No body byte within <c>Forwarding:FirstByteTimeout</c> after the headers.</summary>
    FirstByteTimeout,

    /// <summary>The body stopped flowing for <c>Forwarding:IdleTimeout</c>.</summary>
    IdleTimeout,

    /// <summary>The connection broke while the body was relayed.</summary>
    ResetMidResponse,
}

public static class EngineFailureKinds
{
    /// <summary>Gateway failures eject after <c>ConsecutiveGatewayFailures</c>; every kind counts towards <c>Consecutive5xx</c>.</summary>
    public static bool IsGatewayFailure(this EngineFailureKind kind) => kind != EngineFailureKind.ServerErrorStatus;

    /// <summary>The <c>reason</c> label of the router's metrics and logs.</summary>
    public static string Reason(this EngineFailureKind kind) => kind switch
    {
        EngineFailureKind.ConnectFailure => "connect_failure",
        EngineFailureKind.ResetBeforeHeaders => "reset_before_headers",
        EngineFailureKind.ResponseHeadersTimeout => "response_headers_timeout",
        EngineFailureKind.GatewayStatus => "gateway_status",
        EngineFailureKind.ServerErrorStatus => "server_error_status",
        EngineFailureKind.FirstByteTimeout => "first_byte_timeout",
        EngineFailureKind.IdleTimeout => "idle_timeout",
        _ => "reset_mid_response",
    };
}
