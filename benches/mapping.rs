//! The pure core on one employee and on a company: the field map (`desired_fields`),
//! the diff against what was applied (`changed_fields`), the full-sync planner, and the
//! front door's parse of one webhook delivery.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use personio_sync::domain::fields::{self, UserFields, changed_fields};
use personio_sync::domain::mapping::{MappingContext, desired_fields};
use personio_sync::domain::tenant::Settings;
use personio_sync::domain::{Employee, EmployeeStatus, OrgRef};
use personio_sync::store::{EmployeeRecord, TeamRecord};
use personio_sync::sync::plan::{LaStatus, LaTeam, LaUser, PlanInput, plan};
use personio_sync_sim::generator::{OrgUnitKind, generate_at};

/// The service's view of a simulated person (what the Personio client would parse).
fn domain_employee(person: &personio_sync_sim::person::Employee) -> Employee {
    let org = |org: &Option<personio_sync_sim::person::OrgRef>| {
        org.as_ref().map(|org| OrgRef {
            id: org.id.clone(),
            name: org.name.clone(),
        })
    };
    Employee {
        id: person.id.clone(),
        first_name: person.first_name.clone(),
        last_name: person.last_name.clone(),
        email: person.email.clone(),
        status: person
            .status
            .as_ref()
            .map(|status| EmployeeStatus::parse(status.as_str())),
        position: person.position.clone(),
        department: org(&person.department),
        office: org(&person.office),
        team: org(&person.team),
        supervisor_id: person.supervisor_id.clone(),
        hire_date: person.hire_date,
        termination_date: person.termination_date,
        last_working_day: person.last_working_day,
        employment_type: person.employment_type.clone(),
        has_profile_picture: person.has_profile_picture,
        extra: person.extra.clone(),
    }
}

/// A company of `count` employees plus what Learn Amp and the store would hold after
/// a first sync: the planner's steady state (nothing or little to do).
struct Steady {
    employees: Vec<Employee>,
    users: Vec<LaUser>,
    teams: Vec<LaTeam>,
    records: HashMap<String, EmployeeRecord>,
    team_records: HashMap<String, TeamRecord>,
    settings: Settings,
}

fn steady(count: usize) -> Steady {
    let today = NaiveDate::from_ymd_opt(2025, 3, 1).expect("valid date");
    let company = generate_at(count, 1, today);
    let settings = Settings::default();
    let employees: Vec<Employee> = company
        .employees
        .iter()
        .map(|person| domain_employee(&person.employee))
        .collect();
    let candidates: HashMap<String, &Employee> = employees
        .iter()
        .filter(|employee| !employee.is_inactive())
        .map(|employee| (employee.id.clone(), employee))
        .collect();
    let context = MappingContext {
        manager_candidates: &candidates,
    };
    let mut users = Vec::new();
    let mut records = HashMap::new();
    for (index, employee) in employees.iter().enumerate() {
        let desired = desired_fields(employee, &settings, &context);
        let learnamp_id = index as u64 + 1;
        users.push(LaUser {
            id: learnamp_id,
            email: employee.email.clone().unwrap_or_default(),
            external_id: Some(employee.id.clone()),
            status: LaStatus::NotInvited,
            fields: desired.clone(),
        });
        records.insert(
            employee.id.clone(),
            EmployeeRecord {
                learnamp_id,
                applied: desired,
                employee: Some(employee.clone()),
                avatar_sha256: Some(String::new()),
                ..EmployeeRecord::default()
            },
        );
    }
    let departments: Vec<_> = company
        .org_units
        .iter()
        .filter(|unit| unit.kind == OrgUnitKind::Department)
        .collect();
    let teams = departments
        .iter()
        .enumerate()
        .map(|(index, unit)| LaTeam {
            id: 10_000 + index as u64,
            name: unit.name.clone(),
            external_id: Some(unit.id.clone()),
            parent_id: None,
        })
        .collect();
    let team_records = departments
        .iter()
        .enumerate()
        .map(|(index, unit)| {
            (
                unit.id.clone(),
                TeamRecord {
                    learnamp_id: 10_000 + index as u64,
                    name: unit.name.clone(),
                },
            )
        })
        .collect();
    Steady {
        employees,
        users,
        teams,
        records,
        team_records,
        settings,
    }
}

fn one_employee(c: &mut Criterion) {
    let company = steady(50);
    let candidates: HashMap<String, &Employee> = company
        .employees
        .iter()
        .map(|employee| (employee.id.clone(), employee))
        .collect();
    let context = MappingContext {
        manager_candidates: &candidates,
    };
    let employee = &company.employees[7];
    c.bench_function("mapping/desired_fields/1", |b| {
        b.iter(|| desired_fields(black_box(employee), &company.settings, &context))
    });
    let applied = desired_fields(employee, &company.settings, &context);
    let mut desired: UserFields = applied.clone();
    desired.insert(fields::JOB_TITLE.into(), "Principal engineer".into());
    c.bench_function("mapping/changed_fields/1", |b| {
        b.iter(|| changed_fields(black_box(&desired), black_box(&applied)))
    });
}

fn planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("mapping/plan");
    for count in [1usize, 1_000] {
        let company = steady(count);
        let known = HashMap::new();
        let org_units = HashMap::new();
        group.bench_with_input(
            BenchmarkId::from_parameter(count),
            &company,
            |b, company| {
                b.iter(|| {
                    plan(black_box(&PlanInput {
                        employees: &company.employees,
                        users: &company.users,
                        teams: &company.teams,
                        records: &company.records,
                        team_records: &company.team_records,
                        settings: &company.settings,
                        known_employees: &known,
                        now: Utc::now(),
                        org_units: &org_units,
                        complete: true,
                        create_invites_only: false,
                    }))
                })
            },
        );
    }
    group.finish();
    // Half the company gone from Personio: every stored person no longer listed is
    // planned a deactivation (each one a lookup, not a scan of the employees).
    let mut group = c.benchmark_group("mapping/plan_departures");
    for count in [1_000usize, 4_000] {
        let company = steady(count);
        let remaining = &company.employees[..count / 2];
        let known = HashMap::new();
        let org_units = HashMap::new();
        group.bench_with_input(
            BenchmarkId::from_parameter(count),
            &company,
            |b, company| {
                b.iter(|| {
                    plan(black_box(&PlanInput {
                        employees: remaining,
                        users: &company.users,
                        teams: &company.teams,
                        records: &company.records,
                        team_records: &company.team_records,
                        settings: &company.settings,
                        known_employees: &known,
                        now: Utc::now(),
                        org_units: &org_units,
                        complete: true,
                        create_invites_only: false,
                    }))
                })
            },
        );
    }
    group.finish();
}

/// One delivery as the ingest load sends it: the one-pass parser the front door uses,
/// beside building the `serde_json::Value` tree alone (what the former parser did
/// before it picked any field out).
fn delivery(c: &mut Criterion) {
    let body = personio_sync_bench::ingest::delivery("4711");
    c.bench_function("delivery/parse_delivery", |b| {
        b.iter(|| personio_sync::http::webhooks::parse_delivery(black_box(&body)))
    });
    c.bench_function("delivery/value_tree_only", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)))
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = one_employee, planner, delivery
}
criterion_main!(benches);
