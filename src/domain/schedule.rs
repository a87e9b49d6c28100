//! When things are due, judged by calendar days in the tenant's time zone: invitations
//! (per invite policy) and deactivations on the termination date.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::Employee;
use super::tenant::{Deactivation, InvitePolicy};

/// The first instant of local calendar day `date` in `tz`, as UTC. On a day that
/// starts inside a daylight-saving gap, the first valid local time is used.
pub fn start_of_local_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(instant) => instant.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // Midnight skipped by a DST change: walk forward to the first valid minute.
            (1..=180)
                .find_map(|minutes| {
                    let later = midnight + chrono::Duration::minutes(minutes);
                    tz.from_local_datetime(&later).earliest()
                })
                .map(|instant| instant.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
        }
    }
}

/// When `employee` should be invited under `policy`; `None` for `manual` and when the
/// hire date is unknown (then a timed policy invites at once: see [`invite_due`]).
pub fn invite_due(policy: InvitePolicy, employee: &Employee, tz: Tz) -> InviteTiming {
    match policy {
        InvitePolicy::Manual => InviteTiming::Never,
        InvitePolicy::Immediately => InviteTiming::Now,
        InvitePolicy::OnHireDate => match employee.hire_date {
            Some(hire) => InviteTiming::At(start_of_local_day(hire, tz)),
            None => InviteTiming::Now,
        },
        InvitePolicy::DaysBeforeHire { days } => match employee.hire_date {
            Some(hire) => {
                let day = hire
                    .checked_sub_days(Days::new(u64::from(days)))
                    .unwrap_or(hire);
                InviteTiming::At(start_of_local_day(day, tz))
            }
            None => InviteTiming::Now,
        },
    }
}

/// When an invitation is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteTiming {
    /// The policy never invites by itself.
    Never,
    /// At once.
    Now,
    /// At this instant (at once if it is past).
    At(DateTime<Utc>),
}

/// When `employee` should be deactivated by date under `mode`: the end of the last
/// working day if given, else of the termination date, in `tz` (so the start of the
/// following local day). `None` when the mode is `on_status` or no date is set.
pub fn deactivation_due(mode: Deactivation, employee: &Employee, tz: Tz) -> Option<DateTime<Utc>> {
    if mode != Deactivation::OnTerminationDate {
        return None;
    }
    let last_day = employee.last_working_day.or(employee.termination_date)?;
    let next_day = last_day.checked_add_days(Days::new(1))?;
    Some(start_of_local_day(next_day, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hired(date: &str) -> Employee {
        let mut employee = Employee::with_id("1");
        employee.hire_date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok();
        employee
    }

    #[test]
    fn on_hire_date_is_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let due = invite_due(InvitePolicy::OnHireDate, &hired("2026-07-01"), berlin);
        assert_eq!(
            due,
            InviteTiming::At("2026-06-30T22:00:00Z".parse().unwrap())
        );
        let new_york: Tz = "America/New_York".parse().unwrap();
        let due = invite_due(InvitePolicy::OnHireDate, &hired("2026-01-15"), new_york);
        assert_eq!(
            due,
            InviteTiming::At("2026-01-15T05:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn days_before_hire_counts_calendar_days_across_a_dst_change() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Summer time starts on 2026-03-29: 3 days before 2026-03-31 is 2026-03-28,
        // still winter time (UTC+1).
        let due = invite_due(
            InvitePolicy::DaysBeforeHire { days: 3 },
            &hired("2026-03-31"),
            berlin,
        );
        assert_eq!(
            due,
            InviteTiming::At("2026-03-27T23:00:00Z".parse().unwrap())
        );
        let due = invite_due(
            InvitePolicy::DaysBeforeHire { days: 0 },
            &hired("2026-03-31"),
            berlin,
        );
        assert_eq!(
            due,
            InviteTiming::At("2026-03-30T22:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_midnight_skipped_by_dst_starts_the_day_at_the_first_valid_minute() {
        // Santiago skips 00:00-00:59 on 2026-09-06.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let start = start_of_local_day(NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(), santiago);
        assert_eq!(
            start,
            "2026-09-06T04:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn manual_never_and_unknown_hire_date_now() {
        let utc = chrono_tz::UTC;
        assert_eq!(
            invite_due(InvitePolicy::Manual, &hired("2026-01-01"), utc),
            InviteTiming::Never
        );
        assert_eq!(
            invite_due(InvitePolicy::OnHireDate, &Employee::with_id("2"), utc),
            InviteTiming::Now
        );
    }

    #[test]
    fn deactivation_is_at_the_end_of_the_last_day() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let mut employee = Employee::with_id("1");
        employee.termination_date = NaiveDate::from_ymd_opt(2026, 10, 31);
        assert_eq!(
            deactivation_due(Deactivation::OnStatus, &employee, berlin),
            None
        );
        assert_eq!(
            deactivation_due(Deactivation::OnTerminationDate, &employee, berlin),
            Some("2026-10-31T23:00:00Z".parse().unwrap())
        );
        employee.last_working_day = NaiveDate::from_ymd_opt(2026, 10, 15);
        assert_eq!(
            deactivation_due(Deactivation::OnTerminationDate, &employee, berlin),
            Some("2026-10-15T22:00:00Z".parse().unwrap())
        );
    }
}
