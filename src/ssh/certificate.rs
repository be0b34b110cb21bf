//! User certificates and their validity window. Short-lived certificates (hours, from Vault, step-ca or
//! Teleport) are renewed on disk while a tunnel runs; authentication reads them again on every connect,
//! and one outside its window is named with the window and not offered (the server would refuse it,
//! and each refusal uses up one of its MaxAuthTries).

use std::time::{SystemTime, UNIX_EPOCH};

use super::hostkey::utc;

/// Why a certificate valid from `valid_after` until `valid_before` (Unix seconds, as in the certificate)
/// must not be offered at `now`: `expired at …` or `is not valid until …`, with the window. `None` when
/// it is valid now. The window is OpenSSH's: valid from `valid_after` included to `valid_before` excluded.
pub(crate) fn outside_window(valid_after: u64, valid_before: u64, now: u64) -> Option<String> {
    let window = window(valid_after, valid_before);
    if now < valid_after {
        Some(format!(
            "is not valid until {} ({window}; check this machine's clock if that is wrong)",
            utc(valid_after)
        ))
    } else if now >= valid_before {
        Some(format!("expired at {} ({window})", utc(valid_before)))
    } else {
        None
    }
}

/// As [`outside_window`], at this machine's time.
pub(crate) fn outside_window_now(valid_after: u64, valid_before: u64) -> Option<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    outside_window(valid_after, valid_before, now)
}

/// `valid 2026-12-06 13:00:00 UTC to 14:00:00 UTC` (the end's date only when it differs), `valid until …`
/// for a certificate valid since the epoch, `valid from …` for one that never expires.
fn window(valid_after: u64, valid_before: u64) -> String {
    let from = utc(valid_after);
    let to = utc(valid_before);
    match (valid_after == 0, to == "forever") {
        (true, true) => "valid forever".into(),
        (true, false) => format!("valid until {to}"),
        (false, true) => format!("valid from {from}"),
        (false, false) => {
            let same_day = from.split(' ').next() == to.split(' ').next();
            let to = if same_day {
                to.split_once(' ').map_or(to.as_str(), |(_, time)| time).to_string()
            } else {
                to
            };
            format!("valid {from} to {to}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06 13:00:00 UTC.
    const ONE_PM: u64 = 1_796_562_000;
    const HOUR: u64 = 3600;

    /// A short-lived certificate that has run out, or has not started, is named with its window so a
    /// person sees at once whether to renew it or to look at the clock; one valid now is not mentioned.
    #[test]
    fn messages_name_the_window() {
        assert_eq!(utc(ONE_PM), "2026-12-06 13:00:00 UTC");
        let (after, before) = (ONE_PM, ONE_PM + HOUR);
        assert_eq!(
            outside_window(after, before, before + 60).as_deref(),
            Some("expired at 2026-12-06 14:00:00 UTC (valid 2026-12-06 13:00:00 UTC to 14:00:00 UTC)")
        );
        assert_eq!(
            outside_window(after, before, after - 300).as_deref(),
            Some(
                "is not valid until 2026-12-06 13:00:00 UTC (valid 2026-12-06 13:00:00 UTC to 14:00:00 UTC; check this machine's clock if that is wrong)"
            )
        );
        assert_eq!(outside_window(after, before, after), None, "valid_after is included");
        assert_eq!(outside_window(after, before, before - 1), None);
        assert!(
            outside_window(after, before, before).is_some(),
            "valid_before is excluded"
        );
    }

    /// Windows that span days keep both dates; open-ended ones (ssh-keygen's `always` and `forever`)
    /// say so rather than printing 1970 or a year past 9999.
    #[test]
    fn windows_spanning_days_and_open_ends() {
        let next_day = ONE_PM + 24 * HOUR;
        assert_eq!(
            outside_window(ONE_PM, next_day, next_day).as_deref(),
            Some("expired at 2026-12-07 13:00:00 UTC (valid 2026-12-06 13:00:00 UTC to 2026-12-07 13:00:00 UTC)")
        );
        assert_eq!(
            outside_window(0, ONE_PM, ONE_PM).as_deref(),
            Some("expired at 2026-12-06 13:00:00 UTC (valid until 2026-12-06 13:00:00 UTC)")
        );
        assert_eq!(
            outside_window(ONE_PM, u64::MAX, 0).as_deref(),
            Some(
                "is not valid until 2026-12-06 13:00:00 UTC (valid from 2026-12-06 13:00:00 UTC; check this machine's clock if that is wrong)"
            )
        );
        assert_eq!(outside_window(0, u64::MAX, ONE_PM), None);
        assert_eq!(window(0, u64::MAX), "valid forever");
    }
}
