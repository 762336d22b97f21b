//! Sign-in attempts per account and per address (GCRA through `governor`, keyed): a
//! password-guessing client is slowed down per target account and per source address; the
//! keyed state is trimmed so it stays bounded however many names are tried.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AuthError;

/// Keys kept before old ones are trimmed.
const MAX_KEYS: usize = 100_000;

pub(super) struct SignInLimiter {
    accounts: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl SignInLimiter {
    pub(super) fn new(per_account: u32, per_address: u32) -> Self {
        Self {
            accounts: RateLimiter::keyed(per_minute(per_account)),
            addresses: RateLimiter::keyed(per_minute(per_address)),
        }
    }

    /// One attempt for `account` from `address`, or how long to wait.
    pub(super) fn check(&self, account: &str, address: IpAddr) -> Result<(), AuthError> {
        if self.accounts.len() > MAX_KEYS {
            self.accounts.retain_recent();
        }
        if self.addresses.len() > MAX_KEYS {
            self.addresses.retain_recent();
        }
        let now = DefaultClock::default().now();
        let account: String = account.chars().take(64).collect();
        for verdict in [
            self.addresses.check_key(&address),
            self.accounts.check_key(&account),
        ] {
            if let Err(not_until) = verdict {
                let wait = not_until.wait_time_from(now);
                return Err(AuthError::Throttled {
                    retry_after_s: wait.as_secs().max(1),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_after_its_quota_and_others_are_not() {
        let limiter = SignInLimiter::new(3, 100);
        let from = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limiter.check("ivan", from).is_ok());
        }
        assert!(matches!(
            limiter.check("ivan", from),
            Err(AuthError::Throttled { retry_after_s }) if retry_after_s >= 1
        ));
        assert!(limiter.check("aigerim", from).is_ok());
    }

    #[test]
    fn an_address_is_throttled_whatever_names_it_tries() {
        let limiter = SignInLimiter::new(100, 5);
        let from = IpAddr::from([10, 0, 0, 2]);
        for i in 0..5 {
            assert!(limiter.check(&format!("user{i}"), from).is_ok());
        }
        assert!(limiter.check("user-next", from).is_err());
        assert!(
            limiter
                .check("user-next", IpAddr::from([10, 0, 0, 3]))
                .is_ok()
        );
    }
}
