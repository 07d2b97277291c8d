using VllmStack.Bench.MultiRound;

namespace VllmStack.Tests.Bench;

public sealed class SeatScheduleTests
{
    [Fact]
    public void Seats_share_the_rate_and_start_staggered()
    {
        var schedule = new SeatSchedule(seats: 4, requestsPerSecond: 2);
        Assert.Equal(TimeSpan.FromSeconds(2), schedule.Period);               // 4 seats × 0.5 req/s each
        Assert.Equal([0, 0.5, 1, 1.5], Enumerable.Range(0, 4).Select(s => schedule.FirstDue(s).TotalSeconds));
    }

    [Fact]
    public void The_next_slot_counts_from_the_previous_send_so_a_late_seat_does_not_burst() =>
        Assert.Equal(TimeSpan.FromSeconds(9.5), new SeatSchedule(4, 2).NextDue(TimeSpan.FromSeconds(7.5)));

    [Fact]
    public void No_rate_means_no_waiting()
    {
        var schedule = new SeatSchedule(8, 0);
        Assert.Equal(TimeSpan.Zero, schedule.FirstDue(7));
        Assert.Equal(TimeSpan.FromSeconds(3), schedule.NextDue(TimeSpan.FromSeconds(3)));
    }
}
