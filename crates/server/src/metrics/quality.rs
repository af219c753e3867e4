//! The members' connection quality as histograms: how many members now have a loss, jitter
//! or round-trip time in each bucket (like `room_members`, a reading of the present at each
//! scrape, never a series per member).

use free4chat_sfu::quality::Figures;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

type Result = std::result::Result<(), std::fmt::Error>;

/// Fractions lost: a packet in a thousand up to half of them.
const LOSS_BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5];
/// Jitter: what a jitter buffer absorbs (a few ms) to what breaks voice up (80 ms and more).
const JITTER_BUCKETS: [f64; 9] = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.15, 0.3];
/// Round trips: a city to the other side of the world, and worse.
const RTT_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 5.0];

/// Counts `values` into cumulative buckets under `bounds`, with their sum.
fn buckets(bounds: &[f64], values: &[f64]) -> (Vec<(f64, u64)>, f64) {
    let mut out: Vec<(f64, u64)> = bounds.iter().map(|&b| (b, 0)).collect();
    let mut over = 0;
    for &v in values {
        match out.iter_mut().find(|(b, _)| v <= *b) {
            Some((_, n)) => *n += 1,
            None => over += 1,
        }
    }
    out.push((f64::INFINITY, over));
    (out, values.iter().sum())
}

/// A series of a histogram: its label, if it has one, and the values counted.
type Series = (Option<(&'static str, &'static str)>, Vec<f64>);

fn histogram(
    e: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    bounds: &[f64],
    series: &[Series],
) -> Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (label, values) in series {
        let (b, sum) = buckets(bounds, values);
        let count = values.len() as u64;
        match label {
            Some(l) => m
                .encode_family(&[*l])?
                .encode_histogram::<NoLabelSet>(sum, count, &b, None)?,
            None => m.encode_histogram::<NoLabelSet>(sum, count, &b, None)?,
        }
    }
    Ok(())
}

/// Writes the three histograms of the members whose media is connected.
pub(super) fn encode(e: &mut DescriptorEncoder, members: &[Figures]) -> Result {
    let pick =
        |f: fn(&Figures) -> Option<f64>| -> Vec<f64> { members.iter().filter_map(f).collect() };
    histogram(
        e,
        (
            "member_loss_ratio",
            "Members by the fraction of packets lost, in: from them to the server (our receiver reports), out: from the server to them (theirs)",
        ),
        &LOSS_BUCKETS,
        &[
            (
                Some(("direction", "in")),
                pick(|f| f.loss_in.map(f64::from)),
            ),
            (
                Some(("direction", "out")),
                pick(|f| f.loss_out.map(f64::from)),
            ),
        ],
    )?;
    histogram(
        e,
        (
            "member_jitter_seconds",
            "Members by the interarrival jitter of their audio, as the server measures it",
        ),
        &JITTER_BUCKETS,
        &[(None, pick(|f| f.jitter.map(|d| d.as_secs_f64())))],
    )?;
    histogram(
        e,
        (
            "member_rtt_seconds",
            "Members by round-trip time, from their receiver reports",
        ),
        &RTT_BUCKETS,
        &[(None, pick(|f| f.rtt.map(|d| d.as_secs_f64())))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_first_bucket_that_holds_them_and_the_rest_count_above() {
        let (b, sum) = buckets(&[0.1, 1.0], &[0.05, 0.1, 0.5, 7.0]);
        assert_eq!(b, vec![(0.1, 2), (1.0, 1), (f64::INFINITY, 1)]);
        assert!((sum - 7.65).abs() < 1e-9);
    }
}
