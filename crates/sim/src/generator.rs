//! Deterministic, seeded fake company data for the Personio simulator: employees with a
//! supervisor tree, a three-level department hierarchy, teams, offices, statuses, hire and
//! termination dates, custom attributes and small generated PNG profile pictures.
//!
//! Same `(count, seed, today)` → identical output. [`generate`] anchors dates on today's
//! UTC date (so onboarding hires stay in the future); [`generate_at`] takes the anchor.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub use crate::person::{Employee, EmployeeStatus, OrgRef};

/// First employee id; the CEO.
pub const FIRST_EMPLOYEE_ID: u64 = 1001;

/// Custom attribute key of the cost code (a string like `CC-1234`).
pub const COST_CODE_ATTRIBUTE: &str = "dynamic_305";

/// Custom attribute key of the "eligible for learning" flag (`"yes"` / `"no"`).
pub const ELIGIBLE_ATTRIBUTE: &str = "dynamic_99";

/// The kind of a Personio org unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgUnitKind {
    /// A department.
    Department,
    /// A team.
    Team,
}

impl OrgUnitKind {
    /// The v2 wire value (`department`, `team`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Department => "department",
            Self::Team => "team",
        }
    }

    /// Parses the v2 wire value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "department" => Some(Self::Department),
            "team" => Some(Self::Team),
            _ => None,
        }
    }
}

/// One employee of the simulated company with what the API serves beside the attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEmployee {
    /// The attribute values. Dates are rendered as offset date-times by the simulator
    /// (see [`personio_date_time`]); `has_profile_picture` mirrors `picture.is_some()`.
    pub employee: Employee,
    /// PNG bytes of the profile picture, if any.
    pub picture: Option<Vec<u8>>,
    /// `created_at` as Personio writes it (offset date-time).
    pub created_at: String,
    /// `last_modified_at` as Personio writes it (offset date-time).
    pub last_modified_at: String,
}

impl SimEmployee {
    /// The stable v2 employment id of this employee (uuid-shaped, derived from the id).
    pub fn employment_id(&self) -> String {
        employment_id_for(&self.employee.id)
    }
}

/// The stable employment id the simulator uses for person `person_id`.
pub fn employment_id_for(person_id: &str) -> String {
    let digits: String = person_id.chars().filter(char::is_ascii_digit).collect();
    let number: u64 = digits.parse().unwrap_or(0);
    format!("00000000-0000-4000-8000-{:012}", number % 1_000_000_000_000)
}

/// A department or team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrgUnit {
    /// Numeric id as a decimal string.
    pub id: String,
    /// Department or team.
    pub kind: OrgUnitKind,
    /// Display name.
    pub name: String,
    /// The parent unit of the same kind, if any.
    pub parent_id: Option<String>,
}

/// A whole simulated company.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCompany {
    /// Personio company id (a decimal string), sent in every webhook delivery.
    pub company_id: String,
    /// Employees ordered by id.
    pub employees: Vec<SimEmployee>,
    /// Departments then teams.
    pub org_units: Vec<SimOrgUnit>,
    /// Offices.
    pub offices: Vec<OrgRef>,
}

impl SimCompany {
    /// The org unit with this id and kind.
    pub fn org_unit(&self, id: &str, kind: OrgUnitKind) -> Option<&SimOrgUnit> {
        self.org_units
            .iter()
            .find(|unit| unit.id == id && unit.kind == kind)
    }
}

/// Renders a date the way Personio v1 does: midnight with a CET/CEST-like offset,
/// e.g. `2021-04-01T00:00:00+02:00` (April to October +02:00, otherwise +01:00).
pub fn personio_date_time(date: NaiveDate) -> String {
    format!("{}T00:00:00{}", date.format("%Y-%m-%d"), offset_for(date))
}

/// Renders a UTC instant as a Personio offset date-time in the same offset rule.
pub fn personio_timestamp(instant: chrono::DateTime<Utc>) -> String {
    let offset = offset_for(instant.date_naive());
    let hours: i64 = if offset == "+02:00" { 2 } else { 1 };
    let local = instant.naive_utc() + Duration::hours(hours);
    format!("{}{}", local.format("%Y-%m-%dT%H:%M:%S"), offset)
}

fn offset_for(date: NaiveDate) -> &'static str {
    if (4..=10).contains(&date.month()) {
        "+02:00"
    } else {
        "+01:00"
    }
}

/// Generates `count` employees from `seed`, dates anchored on today's UTC date.
pub fn generate(count: usize, seed: u64) -> SimCompany {
    generate_at(count, seed, Utc::now().date_naive())
}

/// Generates `count` employees from `seed` with dates relative to `today`; fully
/// deterministic.
pub fn generate_at(count: usize, seed: u64, today: NaiveDate) -> SimCompany {
    let mut rng = StdRng::seed_from_u64(seed);
    let company_id = (100_000 + seed % 900_000).to_string();
    let org_units = org_units();
    let offices = offices();
    let departments: Vec<&SimOrgUnit> = org_units
        .iter()
        .filter(|unit| unit.kind == OrgUnitKind::Department)
        .collect();
    let teams: Vec<&SimOrgUnit> = org_units
        .iter()
        .filter(|unit| unit.kind == OrgUnitKind::Team)
        .collect();
    let context = Context {
        today,
        departments: &departments,
        teams: &teams,
        offices: &offices,
    };
    let employees = (0..count)
        .map(|index| generate_employee(&mut rng, &context, index))
        .collect();
    SimCompany {
        company_id,
        employees,
        org_units,
        offices,
    }
}

struct Context<'a> {
    today: NaiveDate,
    departments: &'a [&'a SimOrgUnit],
    teams: &'a [&'a SimOrgUnit],
    offices: &'a [OrgRef],
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Hedy",
    "Tim",
    "Radia",
    "Donald",
    "Katherine",
    "John",
    "Sophie",
    "Lukas",
    "Mia",
    "Jonas",
    "Emma",
    "Felix",
    "Lea",
    "Paul",
    "Hannah",
    "Elias",
    "Lina",
    "Noah",
    "Clara",
    "Ben",
    "Marie",
    "Leon",
    "Anna",
    "Finn",
    "Laura",
    "Jan",
    "Zoe",
    "Tom",
    "Ida",
    "Max",
];

const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Lamarr",
    "Berners",
    "Perlman",
    "Knuth",
    "Johnson",
    "Backus",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Krueger",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Lehmann",
];

const POSITIONS: &[&str] = &[
    "Software Engineer",
    "Senior Software Engineer",
    "Engineering Manager",
    "Account Executive",
    "Customer Success Manager",
    "Support Specialist",
    "Accountant",
    "People Partner",
    "Product Manager",
    "Designer",
    "Security Engineer",
    "Payroll Specialist",
];

fn org_units() -> Vec<SimOrgUnit> {
    // (id offset, name, parent offset): 3 top units, 6 sub-units, 4 sub-sub-units.
    let departments: &[(u64, &str, Option<u64>)] = &[
        (0, "Engineering", None),
        (1, "Sales", None),
        (2, "Operations", None),
        (3, "Platform", Some(0)),
        (4, "Product Development", Some(0)),
        (5, "Field Sales", Some(1)),
        (6, "Customer Success", Some(1)),
        (7, "Finance", Some(2)),
        (8, "People", Some(2)),
        (9, "Infrastructure", Some(3)),
        (10, "Security", Some(3)),
        (11, "Support", Some(6)),
        (12, "Payroll", Some(7)),
    ];
    let teams: &[&str] = &["Atlas", "Borealis", "Comet", "Delta", "Eclipse", "Fjord"];
    let mut units: Vec<SimOrgUnit> = departments
        .iter()
        .map(|(offset, name, parent)| SimOrgUnit {
            id: (281_500 + offset).to_string(),
            kind: OrgUnitKind::Department,
            name: (*name).to_string(),
            parent_id: parent.map(|parent| (281_500 + parent).to_string()),
        })
        .collect();
    units.extend(teams.iter().enumerate().map(|(index, name)| SimOrgUnit {
        id: (59_000 + index as u64).to_string(),
        kind: OrgUnitKind::Team,
        name: (*name).to_string(),
        parent_id: None,
    }));
    units
}

fn offices() -> Vec<OrgRef> {
    [
        "Munich",
        "Berlin",
        "London",
        "Madrid",
        "Amsterdam",
        "Remote",
    ]
    .iter()
    .enumerate()
    .map(|(index, name)| OrgRef {
        id: (131_000 + index as u64).to_string(),
        name: (*name).to_string(),
    })
    .collect()
}

/// Dates of one employee relative to the anchor day.
struct Dates {
    hire: NaiveDate,
    termination: Option<NaiveDate>,
    last_working_day: Option<NaiveDate>,
}

fn pick_status(rng: &mut StdRng, index: usize) -> EmployeeStatus {
    if index == 0 {
        return EmployeeStatus::Active;
    }
    match rng.random_range(0..100) {
        0..8 => EmployeeStatus::Inactive,
        8..13 => EmployeeStatus::Onboarding,
        13..18 => EmployeeStatus::Leave,
        _ => EmployeeStatus::Active,
    }
}

fn pick_dates(rng: &mut StdRng, today: NaiveDate, status: &EmployeeStatus) -> Dates {
    let past_hire = today - Duration::days(rng.random_range(30..3000));
    match status {
        EmployeeStatus::Onboarding => Dates {
            hire: today + Duration::days(rng.random_range(3..120)),
            termination: None,
            last_working_day: None,
        },
        EmployeeStatus::Inactive => {
            let hire = today - Duration::days(rng.random_range(400..3000));
            let termination = today - Duration::days(rng.random_range(2..380));
            Dates {
                hire,
                termination: Some(termination),
                last_working_day: Some(termination - Duration::days(rng.random_range(0..10))),
            }
        }
        _ if rng.random_range(0..100) < 5 => {
            let termination = today + Duration::days(rng.random_range(5..90));
            Dates {
                hire: past_hire,
                termination: Some(termination),
                last_working_day: Some(termination - Duration::days(rng.random_range(0..5))),
            }
        }
        _ => Dates {
            hire: past_hire,
            termination: None,
            last_working_day: None,
        },
    }
}

/// Supervisor of employee `index` (> 0): a binary-heap shaped tree, so the chain below
/// the CEO is `log2(N)` deep (≥ 6 levels for N ≥ 64).
fn supervisor_index(index: usize) -> usize {
    (index - 1) / 2
}

fn org_ref(unit: &SimOrgUnit) -> OrgRef {
    OrgRef {
        id: unit.id.clone(),
        name: unit.name.clone(),
    }
}

fn generate_employee(rng: &mut StdRng, context: &Context<'_>, index: usize) -> SimEmployee {
    let id = FIRST_EMPLOYEE_ID + index as u64;
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let status = pick_status(rng, index);
    let dates = pick_dates(rng, context.today, &status);
    let department = context.departments[rng.random_range(0..context.departments.len())];
    let office = &context.offices[rng.random_range(0..context.offices.len())];
    let team = if rng.random_range(0..100) < 70 {
        Some(org_ref(
            context.teams[rng.random_range(0..context.teams.len())],
        ))
    } else {
        None
    };
    let position = if index == 0 {
        "Chief Executive Officer"
    } else {
        POSITIONS[rng.random_range(0..POSITIONS.len())]
    };
    let external = index != 0 && rng.random_range(0..100) < 10;
    let picture = (rng.random_range(0..100) < 30).then(|| tiny_png(id, rng.random()));
    let mut extra = BTreeMap::new();
    extra.insert(
        COST_CODE_ATTRIBUTE.to_string(),
        json!(format!("CC-{}", rng.random_range(1000..10_000))),
    );
    let eligible = if rng.random_range(0..100) < 80 {
        "yes"
    } else {
        "no"
    };
    extra.insert(ELIGIBLE_ATTRIBUTE.to_string(), json!(eligible));
    let hours = if rng.random_range(0..100) < 80 {
        "40"
    } else {
        "20"
    };
    extra.insert("weekly_working_hours".to_string(), json!(hours));
    extra.insert(
        "subcompany".to_string(),
        json!({"type": "Subcompany", "attributes": {"id": 7033, "name": "ACME GmbH"}}),
    );
    let created = dates.hire.min(context.today) - Duration::days(rng.random_range(1..60));
    let modified = context.today - Duration::days(rng.random_range(0..30));
    let employee = Employee {
        id: id.to_string(),
        first_name: Some(first.to_string()),
        last_name: Some(last.to_string()),
        email: Some(format!(
            "{}.{}.{}@acme.example",
            first.to_lowercase(),
            last.to_lowercase(),
            id
        )),
        status: Some(status),
        position: Some(position.to_string()),
        department: Some(org_ref(department)),
        office: Some(office.clone()),
        team,
        supervisor_id: (index > 0)
            .then(|| (FIRST_EMPLOYEE_ID + supervisor_index(index) as u64).to_string()),
        hire_date: Some(dates.hire),
        termination_date: dates.termination,
        last_working_day: dates.last_working_day,
        employment_type: Some(if external { "external" } else { "internal" }.to_string()),
        has_profile_picture: picture.is_some(),
        extra,
    };
    SimEmployee {
        employee,
        picture,
        created_at: personio_date_time(created).replace("T00:00:00", "T09:30:00"),
        last_modified_at: personio_date_time(modified).replace("T00:00:00", "T10:15:00"),
    }
}

/// A valid 4×4 RGB PNG whose colours depend on `id` and `salt`.
pub fn tiny_png(id: u64, salt: u32) -> Vec<u8> {
    const SIZE: u32 = 4;
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(salt);
    let mut raw = Vec::new();
    for row in 0..SIZE {
        raw.push(0); // filter: none
        for column in 0..SIZE {
            let shift = (row * SIZE + column) % 6 * 8;
            let base = (seed >> shift) as u8;
            raw.extend_from_slice(&[base, base.wrapping_add(85), base.wrapping_add(170)]);
        }
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&SIZE.to_be_bytes());
    ihdr.extend_from_slice(&SIZE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    push_chunk(&mut png, b"IHDR", &ihdr);
    push_chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    push_chunk(&mut png, b"IEND", &[]);
    png
}

fn push_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend_from_slice(&length.to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    png.extend_from_slice(&crc_input);
    png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

/// zlib stream with one stored (uncompressed) deflate block; `data` must be < 64 KiB.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let mut out = vec![0x78, 0x01, 0x01];
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&(!length).to_le_bytes());
    out.extend_from_slice(&data[..usize::from(length)]);
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 15).unwrap()
    }

    #[test]
    fn same_seed_same_company_other_seed_differs() {
        let first = generate_at(120, 7, today());
        assert_eq!(first, generate_at(120, 7, today()));
        assert_ne!(first, generate_at(120, 8, today()));
        assert_eq!(first.employees.len(), 120);
    }

    #[test]
    fn org_structure_has_enough_units_and_three_levels() {
        let company = generate_at(10, 1, today());
        let departments: Vec<_> = company
            .org_units
            .iter()
            .filter(|unit| unit.kind == OrgUnitKind::Department)
            .collect();
        assert!(departments.len() >= 10);
        assert!(company.offices.len() >= 5);
        assert!(
            company
                .org_units
                .iter()
                .any(|u| u.kind == OrgUnitKind::Team)
        );
        let depth_of = |id: &str| {
            let mut depth = 0;
            let mut current = company.org_unit(id, OrgUnitKind::Department);
            while let Some(parent) = current.and_then(|unit| unit.parent_id.as_deref()) {
                depth += 1;
                current = company.org_unit(parent, OrgUnitKind::Department);
            }
            depth
        };
        assert_eq!(departments.iter().map(|d| depth_of(&d.id)).max(), Some(2));
    }

    #[test]
    fn supervisor_tree_is_deep_and_rooted_at_the_ceo() {
        let company = generate_at(200, 3, today());
        let supervisors: HashMap<&str, Option<&str>> = company
            .employees
            .iter()
            .map(|e| (e.employee.id.as_str(), e.employee.supervisor_id.as_deref()))
            .collect();
        let roots: Vec<_> = supervisors.iter().filter(|(_, s)| s.is_none()).collect();
        assert_eq!(roots.len(), 1);
        assert_eq!(*roots[0].0, FIRST_EMPLOYEE_ID.to_string());
        let mut deepest = 0;
        for id in supervisors.keys() {
            let mut depth = 0;
            let mut current = *id;
            while let Some(Some(parent)) = supervisors.get(current) {
                assert_ne!(*parent, *id, "cycle");
                depth += 1;
                current = parent;
            }
            deepest = deepest.max(depth);
        }
        assert!(deepest >= 5, "deepest chain {deepest}");
    }

    #[test]
    fn statuses_dates_emails_and_pictures_are_plausible() {
        let company = generate_at(300, 11, today());
        let mut statuses = HashSet::new();
        let mut emails = HashSet::new();
        let mut pictures = 0;
        let mut future_termination = false;
        for sim in &company.employees {
            let employee = &sim.employee;
            let status = employee.status.clone().unwrap();
            if status == EmployeeStatus::Onboarding {
                assert!(employee.hire_date.unwrap() > today());
            }
            if status == EmployeeStatus::Inactive {
                assert!(employee.termination_date.unwrap() < today());
                assert!(employee.last_working_day.is_some());
            }
            if status != EmployeeStatus::Inactive && employee.termination_date.is_some() {
                future_termination = true;
            }
            statuses.insert(status.as_str().to_string());
            assert!(emails.insert(employee.email.clone().unwrap()));
            assert_eq!(employee.has_profile_picture, sim.picture.is_some());
            if let Some(picture) = &sim.picture {
                assert_eq!(&picture[..8], b"\x89PNG\r\n\x1a\n");
                pictures += 1;
            }
            assert!(employee.extra.contains_key(COST_CODE_ATTRIBUTE));
        }
        assert_eq!(statuses.len(), 4, "{statuses:?}");
        assert!(future_termination);
        assert!((50..=130).contains(&pictures), "{pictures} pictures");
        let inactive = company
            .employees
            .iter()
            .filter(|e| e.employee.is_inactive())
            .count();
        assert!((10..=45).contains(&inactive), "{inactive} inactive");
    }

    #[test]
    fn dates_render_with_an_offset() {
        let summer = NaiveDate::from_ymd_opt(2021, 4, 1).unwrap();
        assert_eq!(personio_date_time(summer), "2021-04-01T00:00:00+02:00");
        let winter = NaiveDate::from_ymd_opt(2021, 1, 5).unwrap();
        assert_eq!(personio_date_time(winter), "2021-01-05T00:00:00+01:00");
    }

    #[test]
    fn png_checksums_are_valid() {
        // Known CRC of "IEND" with no data.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_ne!(tiny_png(1, 0), tiny_png(2, 0));
    }
}
