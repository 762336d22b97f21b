//! Jittered exponential backoff for reconnects.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The next delay: `initial × 2^attempt`, capped at `max`, then scaled by a
    /// random factor in [0.5, 1.0] ("equal jitter") so that cameras that failed
    /// together do not retry together. Never exceeds `max`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << self.attempt.min(20));
        let capped = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        capped.mul_f64(rng.random_range(0.5..=1.0))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_never_pass_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<f64> = (0..10)
            .map(|_| b.next_delay(&mut rng).as_secs_f64())
            .collect();
        for (i, d) in delays.iter().enumerate() {
            let nominal = (2f64.powi(i as i32)).min(30.0);
            assert!(
                *d >= nominal * 0.5 && *d <= nominal,
                "attempt {i}: {d} vs {nominal}"
            );
        }
    }

    #[test]
    fn reset_starts_over_from_the_initial_delay() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        for _ in 0..8 {
            b.next_delay(&mut rng);
        }
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_cameras_that_failed_together() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let mut b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8));
            distinct.insert(b.next_delay(&mut rng).as_millis());
        }
        assert!(
            distinct.len() > 50,
            "only {} distinct delays",
            distinct.len()
        );
    }
}
