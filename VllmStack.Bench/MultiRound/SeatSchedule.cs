namespace VllmStack.Bench.MultiRound;

/// <summary>
/// Spreads a total request rate over the seats (one simulated user at a time each). A seat's sends are at least
/// one period (seats ÷ rate) apart: its next request leaves one period after its previous one, or when the
/// previous answer arrives if that is later. Seats start staggered by period ÷ seats, so the rate is even from the
/// first second. A rate of 0 means no pacing: each user asks again as soon as its answer is in.
/// </summary>
public sealed class SeatSchedule
{
    private readonly int _seats;

    public SeatSchedule(int seats, double requestsPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seats);
        ArgumentOutOfRangeException.ThrowIfNegative(requestsPerSecond);
        _seats = seats;
        Period = requestsPerSecond > 0 ? TimeSpan.FromSeconds(seats / requestsPerSecond) : TimeSpan.Zero;
    }

    /// <summary>The least time between two requests of one seat.</summary>
    public TimeSpan Period { get; }

    /// <summary>When (from the start of the run) the seat's first request is due.</summary>
    public TimeSpan FirstDue(int seat) => Period * seat / _seats;

    /// <summary>
    /// When the seat's next request is due, given when its previous one left. Counting from the previous send
    /// (not a fixed grid) means a seat that fell behind a slow server never bursts to catch up.
    /// </summary>
    public TimeSpan NextDue(TimeSpan previousSent) => previousSent + Period;
}
