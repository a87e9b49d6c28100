use chrono::NaiveDate;

use super::*;
use crate::domain::fields;
use crate::domain::tenant::{Deactivation, InvitePolicy};
use crate::domain::{EmployeeStatus, OrgRef};

fn person(id: &str, email: &str) -> Employee {
    let mut employee = Employee::with_id(id);
    employee.first_name = Some("First".into());
    employee.last_name = Some("Last".into());
    employee.email = Some(email.into());
    employee.status = Some(EmployeeStatus::Active);
    employee.department = Some(OrgRef {
        id: "10".into(),
        name: "Ops".into(),
    });
    employee.hire_date = NaiveDate::from_ymd_opt(2026, 6, 1);
    employee
}

fn run(
    employees: &[Employee],
    users: &[LaUser],
    records: &HashMap<String, EmployeeRecord>,
    settings: &Settings,
    now: &str,
) -> Plan {
    let teams = [LaTeam {
        id: 5,
        name: "Ops".into(),
        external_id: Some("10".into()),
        parent_id: None,
    }];
    plan(&PlanInput {
        employees,
        users,
        teams: &teams,
        records,
        team_records: &HashMap::new(),
        settings,
        known_employees: &HashMap::new(),
        now: now.parse().unwrap(),
        org_units: &HashMap::new(),
        complete: true,
        create_invites_only: false,
    })
}

/// The records a successful apply of `plan` would leave behind.
fn applied(plan: &Plan) -> HashMap<String, EmployeeRecord> {
    plan.steps
        .iter()
        .map(|step| {
            let mut record = step.record.clone();
            record.learnamp_id = step.learnamp_id.unwrap_or(100);
            record.applied = step.desired.clone();
            record.employee = step.employee.clone();
            record.invited |= step.has(&Action::Invite) || step.has(&Action::RecordInvitation);
            let deactivates = step.deactivates();
            record.deactivated =
                (record.deactivated || deactivates) && !step.has(&Action::Reactivate);
            if let Some(schedule) = step.schedule() {
                record.invite_due = schedule.invite;
                record.deactivate_due = schedule.deactivate;
            }
            (step.personio_id.clone(), record)
        })
        .collect()
}

fn la_user(id: u64, records: &HashMap<String, EmployeeRecord>, personio_id: &str) -> LaUser {
    let record = &records[personio_id];
    LaUser {
        id,
        email: record.applied[fields::EMAIL].clone(),
        external_id: Some(personio_id.into()),
        status: if record.deactivated {
            LaStatus::Deactivated
        } else {
            LaStatus::NotInvited
        },
        fields: record.applied.clone(),
    }
}

#[test]
fn a_second_plan_after_applying_the_first_is_empty() {
    let employees = [person("1", "a@x.io")];
    let settings = Settings::default();
    let first = run(
        &employees,
        &[],
        &HashMap::new(),
        &settings,
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(first.view().creates.len(), 1);
    let records = applied(&first);
    let users = [la_user(100, &records, "1")];
    let second = run(
        &employees,
        &users,
        &records,
        &settings,
        "2026-07-01T00:00:00Z",
    );
    assert!(second.is_empty(), "{second:?}");
    assert!(second.steps.is_empty());
    assert_eq!(second.unchanged, 1);
}

#[test]
fn without_the_invitation_route_a_timed_invitation_creates_the_user_on_its_day() {
    let mut boss = person("1", "boss@x.io");
    boss.hire_date = NaiveDate::from_ymd_opt(2026, 1, 1);
    let mut report = person("2", "report@x.io");
    report.supervisor_id = Some("3".into());
    report.hire_date = NaiveDate::from_ymd_opt(2026, 1, 1);
    // Person 3 (a future hire) manages person 2.
    let employees = [boss, report, person("3", "future@x.io")];
    let settings = Settings {
        invite_policy: InvitePolicy::OnHireDate,
        timezone: "Europe/Berlin".into(),
        ..Settings::default()
    };
    let plan_at = |records: &HashMap<String, EmployeeRecord>, users: &[LaUser], now: &str| {
        let teams = [];
        plan(&PlanInput {
            employees: &employees,
            users,
            teams: &teams,
            records,
            team_records: &HashMap::new(),
            settings: &settings,
            known_employees: &HashMap::new(),
            now: now.parse().unwrap(),
            org_units: &HashMap::new(),
            complete: true,
            create_invites_only: true,
        })
    };
    let early = plan_at(&HashMap::new(), &[], "2026-05-20T00:00:00Z");
    let early_view = early.view();
    // Hired people are created with the invite; the future hire only scheduled.
    let created: Vec<&str> = early_view
        .creates
        .iter()
        .map(|c| c.personio_id.as_str())
        .collect();
    assert_eq!(created, ["1", "2"]);
    let invited: Vec<&str> = early_view
        .invitations
        .iter()
        .map(|i| i.personio_id.as_str())
        .collect();
    assert_eq!(invited, ["1", "2"]);
    assert_eq!(early.view().scheduled_creations.len(), 1);
    assert_eq!(early.view().scheduled_creations[0].personio_id, "3");
    assert_eq!(
        early.view().scheduled_creations[0].at,
        "2026-05-31T22:00:00+00:00"
    );
    assert_eq!(
        early.view().scheduled_invitations,
        early.view().scheduled_creations
    );
    // Not created yet, so nobody's manager yet.
    let report_step = early.steps.iter().find(|s| s.personio_id == "2").unwrap();
    assert_eq!(
        report_step
            .send()
            .get(fields::MANAGER_EMAIL)
            .map(String::as_str),
        Some("")
    );
    let deferred = early.steps.iter().find(|s| s.personio_id == "3").unwrap();
    assert!(
        deferred.schedule().is_some_and(|s| s.create_on_invitation)
            && deferred.waits_for_creation()
            && !deferred.writes()
    );

    // What apply stores: links for 1 and 2, only the day for 3.
    let mut records = applied(&early);
    let waiting = records.get_mut("3").unwrap();
    waiting.learnamp_id = 0;
    waiting.applied.clear();
    waiting.employee = None;
    records.get_mut("2").unwrap().learnamp_id = 101;
    let users = [la_user(100, &records, "1"), la_user(101, &records, "2")];
    let again = plan_at(&records, &users, "2026-05-25T00:00:00Z");
    assert!(again.steps.iter().all(|step| !step.writes()), "{again:?}");
    assert!(
        again.view().scheduled_creations.is_empty()
            && again.view().scheduled_invitations.is_empty()
    );
    assert_eq!(
        again.active_synced, 2,
        "a person waiting for their day is not synced"
    );

    // On the day: created with the documented invite.
    let due = plan_at(&records, &users, "2026-05-31T22:00:00Z");
    let due_view = due.view();
    let created: Vec<&str> = due_view
        .creates
        .iter()
        .map(|c| c.personio_id.as_str())
        .collect();
    assert_eq!(created, ["3"]);
    let step = due.steps.iter().find(|s| s.personio_id == "3").unwrap();
    assert!(step.has(&Action::Invite) && !step.waits_for_creation() && step.learnamp_id.is_none());
}

#[test]
fn without_the_invitation_route_an_existing_user_is_not_planned_an_invitation() {
    let employees = [person("1", "a@x.io")];
    let settings = Settings {
        invite_policy: InvitePolicy::Immediately,
        ..Settings::default()
    };
    let records = applied(&run(
        &employees,
        &[],
        &HashMap::new(),
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    ));
    let users = [la_user(100, &records, "1")];
    let teams = [];
    let plan = plan(&PlanInput {
        employees: &employees,
        users: &users,
        teams: &teams,
        records: &records,
        team_records: &HashMap::new(),
        settings: &settings,
        known_employees: &HashMap::new(),
        now: "2026-07-01T00:00:00Z".parse().unwrap(),
        org_units: &HashMap::new(),
        complete: true,
        create_invites_only: true,
    });
    assert!(plan.view().invitations.is_empty(), "{plan:?}");
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
}

#[test]
fn timed_invitations_are_scheduled_then_sent_once_the_day_comes() {
    let employees = [person("1", "a@x.io")];
    let settings = Settings {
        invite_policy: InvitePolicy::OnHireDate,
        timezone: "Europe/Berlin".into(),
        ..Settings::default()
    };
    let early = run(
        &employees,
        &[],
        &HashMap::new(),
        &settings,
        "2026-05-20T00:00:00Z",
    );
    assert!(early.view().invitations.is_empty());
    assert_eq!(
        early.view().scheduled_invitations[0].at,
        "2026-05-31T22:00:00+00:00"
    );
    let records = applied(&early);
    let users = [la_user(100, &records, "1")];
    let unchanged = run(
        &employees,
        &users,
        &records,
        &settings,
        "2026-05-25T00:00:00Z",
    );
    assert!(
        unchanged.steps.is_empty(),
        "nothing to re-plan before the day"
    );
    let due = run(
        &employees,
        &users,
        &records,
        &settings,
        "2026-05-31T22:00:00Z",
    );
    assert_eq!(due.view().invitations.len(), 1);
    let records = applied(&due);
    let users = [la_user(100, &records, "1")];
    let after = run(
        &employees,
        &users,
        &records,
        &settings,
        "2026-06-02T00:00:00Z",
    );
    assert!(after.view().invitations.is_empty(), "invited once");
}

#[test]
fn termination_date_deactivates_at_the_end_of_the_day_and_a_withdrawal_cancels() {
    let mut leaver = person("1", "a@x.io");
    leaver.termination_date = NaiveDate::from_ymd_opt(2026, 8, 31);
    let settings = Settings {
        deactivation: Deactivation::OnTerminationDate,
        ..Settings::default()
    };
    let first = run(
        std::slice::from_ref(&leaver),
        &[],
        &HashMap::new(),
        &settings,
        "2026-08-01T00:00:00Z",
    );
    assert_eq!(
        first.view().scheduled_deactivations[0].at,
        "2026-09-01T00:00:00+00:00"
    );
    let records = applied(&first);
    let users = [la_user(100, &records, "1")];
    let due = run(
        std::slice::from_ref(&leaver),
        &users,
        &records,
        &settings,
        "2026-09-01T00:00:00Z",
    );
    assert_eq!(due.view().deactivations.len(), 1);
    assert_eq!(
        due.view().deactivations[0].reason,
        "termination date reached"
    );

    let mut withdrawn = leaver.clone();
    withdrawn.termination_date = None;
    let cancel = run(
        std::slice::from_ref(&withdrawn),
        &users,
        &records,
        &settings,
        "2026-08-02T00:00:00Z",
    );
    let step = &cancel.steps[0];
    assert!(step.schedule().is_some_and(|s| s.deactivate.is_none()));
}

/// A boss and a report, applied once: the records and Learn Amp users that leaves.
fn boss_and_report() -> (Vec<Employee>, HashMap<String, EmployeeRecord>, Vec<LaUser>) {
    let boss = person("1", "boss@x.io");
    let mut report = person("2", "report@x.io");
    report.supervisor_id = Some("1".into());
    let employees = vec![boss, report];
    let first = run(
        &employees,
        &[],
        &HashMap::new(),
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    let mut records = applied(&first);
    records.get_mut("2").unwrap().learnamp_id = 101;
    let users = vec![la_user(100, &records, "1"), la_user(101, &records, "2")];
    assert_eq!(users[1].fields[fields::MANAGER_EMAIL], "boss@x.io");
    (employees, records, users)
}

#[test]
fn a_manager_the_record_claims_but_learn_amp_lacks_is_written_again() {
    // The report's manager was cleared in Learn Amp (its boss had left), and the
    // service was killed before the record of that write was stored; the boss is
    // back, so Personio and the stale record agree, but Learn Amp does not.
    let (employees, records, mut users) = boss_and_report();
    users[1]
        .fields
        .insert(fields::MANAGER_EMAIL.into(), String::new());
    let plan = run(
        &employees,
        &users,
        &records,
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(plan.view().updates.len(), 1, "{plan:?}");
    let view = plan.view();
    let update = &view.updates[0];
    assert_eq!(update.personio_id, "2");
    assert_eq!(
        update.changes[fields::MANAGER_EMAIL],
        Change {
            from: Some(String::new()),
            to: "boss@x.io".into()
        }
    );
    assert_eq!(update.changes.len(), 1, "only the field that differs");
    let step = plan.steps.iter().find(|step| step.personio_id == "2");
    assert_eq!(
        step.unwrap()
            .send()
            .get(fields::MANAGER_EMAIL)
            .map(String::as_str),
        Some("boss@x.io")
    );
}

#[test]
fn other_fields_learn_amp_holds_from_a_lost_record_write_are_written_again() {
    let (mut employees, records, mut users) = boss_and_report();
    employees[1].position = Some("Engineer".into());
    let mut records = records;
    let record = records.get_mut("2").unwrap();
    record
        .applied
        .insert(fields::JOB_TITLE.into(), "Engineer".into());
    record.employee = Some(employees[1].clone());
    users[1]
        .fields
        .insert(fields::JOB_TITLE.into(), "Lead".into());
    users[1]
        .fields
        .insert(fields::LEAVE_DATE.into(), "2026-06-30".into());
    let plan = run(
        &employees,
        &users,
        &records,
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(plan.view().updates.len(), 1, "{plan:?}");
    let view = plan.view();
    let changes = &view.updates[0].changes;
    assert_eq!(changes[fields::JOB_TITLE].to, "Engineer");
    assert_eq!(changes[fields::LEAVE_DATE].to, "");
    assert_eq!(changes.len(), 2);
}

#[test]
fn learn_amp_values_equal_up_to_case_and_blanks_or_an_unechoed_leave_date_plan_no_write() {
    let (mut employees, records, mut users) = boss_and_report();
    employees[1].termination_date = NaiveDate::from_ymd_opt(2026, 12, 31);
    let mut records = records;
    let record = records.get_mut("2").unwrap();
    record
        .applied
        .insert(fields::LEAVE_DATE.into(), "2026-12-31".into());
    record.employee = Some(employees[1].clone());
    let fields = &mut users[1].fields;
    fields.insert(fields::MANAGER_EMAIL.into(), "Boss@X.io".into());
    fields.insert(fields::EMAIL.into(), "REPORT@x.io".into());
    fields.insert(fields::FIRST_NAME.into(), "First ".into());
    // Learn Amp may not echo the assumed leaveDate field: an empty one is no drift.
    fields.insert(fields::LEAVE_DATE.into(), String::new());
    let plan = run(
        &employees,
        &users,
        &records,
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    assert!(plan.is_empty(), "{plan:?}");
    assert!(plan.view().updates.is_empty());
}

#[test]
fn a_user_linked_to_someone_else_is_a_clash_not_an_adoption() {
    let employees = [person("2", "shared@x.io")];
    let other = LaUser {
        id: 9,
        email: "Shared@X.io".into(),
        external_id: Some("1".into()),
        status: LaStatus::Confirmed,
        fields: UserFields::new(),
    };
    let plan = run(
        &employees,
        &[other],
        &HashMap::new(),
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    assert_eq!(plan.clashes.len(), 1);
    assert!(plan.view().creates.is_empty() && plan.view().updates.is_empty());
}

#[test]
fn adopting_a_user_for_an_unlinked_record_keeps_its_invitation_flags() {
    let employees = [person("1", "a@x.io")];
    let intent = EmployeeRecord {
        invited: true,
        invite_started: true,
        ..EmployeeRecord::default()
    };
    let records = HashMap::from([("1".to_string(), intent)]);
    let user = LaUser {
        id: 9,
        email: "a@x.io".into(),
        external_id: None,
        status: LaStatus::NotInvited,
        fields: UserFields::new(),
    };
    let plan = run(
        &employees,
        &[user],
        &records,
        &Settings::default(),
        "2026-07-01T00:00:00Z",
    );
    let step = plan
        .steps
        .iter()
        .find(|step| step.personio_id == "1")
        .expect("an adoption step");
    assert_eq!(step.learnamp_id, Some(9), "{step:?}");
    assert_eq!(step.record.learnamp_id, 9);
    assert!(
        step.record.invited && step.record.invite_started,
        "{:?}",
        step.record
    );
    assert!(!step.has(&Action::Invite), "{step:?}");
}

#[test]
fn the_dry_run_answer_keeps_the_contract_fields_in_order_and_lists_every_step() {
    let mut leaver = person("2", "leaver@x.io");
    leaver.status = Some(EmployeeStatus::Inactive);
    let records: HashMap<String, EmployeeRecord> =
        [("2", 41u64, "leaver@x.io"), ("3", 42, "gone@x.io")]
            .into_iter()
            .map(|(id, learnamp_id, email)| {
                let record = EmployeeRecord {
                    learnamp_id,
                    applied: [(fields::EMAIL.to_string(), email.to_string())].into(),
                    ..EmployeeRecord::default()
                };
                (id.to_string(), record)
            })
            .collect();
    let users = [la_user(41, &records, "2"), la_user(42, &records, "3")];
    let plan = run(
        &[person("1", "new@x.io"), leaver],
        &users,
        &records,
        &Settings::default(),
        "2026-05-20T00:00:00Z",
    );
    let json = serde_json::to_string(&plan).unwrap();
    let keys = [
        "creates",
        "updates",
        "deactivations",
        "reactivations",
        "invitations",
        "teams",
        "scheduled_invitations",
        "scheduled_creations",
        "scheduled_deactivations",
        "clashes",
        "unsynced_supervisors",
        "unchanged",
        "active_synced",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|key| json.find(&format!("\"{key}\":")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{json}");
    assert!(!json.contains("\"steps\""), "{json}");
    let view = plan.view();
    let created: Vec<&str> = view
        .creates
        .iter()
        .map(|c| c.personio_id.as_str())
        .collect();
    assert_eq!(created, ["1"]);
    let mut deactivated: Vec<(&str, &str)> = view
        .deactivations
        .iter()
        .map(|d| (d.personio_id.as_str(), d.reason.as_str()))
        .collect();
    deactivated.sort();
    assert_eq!(
        deactivated,
        [("2", "inactive in Personio"), ("3", "deleted in Personio")]
    );
    assert_eq!(plan.deactivation_count(), 2);
}
