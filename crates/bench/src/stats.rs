//! Percentiles and the report: a human table, then one JSON line.

use serde_json::{Value, json};

/// p-th percentile (0–100) of `v`, sorted in place; 0 when empty.
pub fn percentile(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

/// p50, p99 and max of `v`.
pub fn summary(v: &mut [u64]) -> Value {
    json!({
        "p50": percentile(v, 50.0),
        "p99": percentile(v, 99.0),
        "max": v.iter().copied().max().unwrap_or(0),
    })
}

/// Prints the figures as an aligned table of `key: value` lines.
pub fn print_table(title: &str, report: &Value) {
    println!("== {title}");
    print_object("", report);
}

fn print_object(prefix: &str, v: &Value) {
    if let Value::Object(map) = v {
        for (k, v) in map {
            let key = format!("{prefix}{k}");
            match v {
                Value::Object(_) => print_object(&format!("{key}."), v),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => println!("{key:<32} {f:.3}"),
                    _ => println!("{key:<32} {n}"),
                },
                other => println!("{key:<32} {other}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut v, 50.0), 51);
        assert_eq!(percentile(&mut v, 99.0), 99);
        assert_eq!(percentile(&mut [], 50.0), 0);
        assert_eq!(summary(&mut [5, 1, 3])["max"], 5);
    }
}
