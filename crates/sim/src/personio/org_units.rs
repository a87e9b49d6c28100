//! `GET /v2/org-units/{id}?type=department|team&include_parent_chain=true|false`.
//!
//! Answer shape (the reference documents only the fields, §6.2; this is the simulator's
//! choice): `{"id": "281503", "type": "department", "name": "Platform",
//! "abbreviation": "PLA", "description": "Platform department", "parent_id": "281500"}`
//! plus `"parent_chain": ["281500"]` (ids only, nearest parent first) when
//! `include_parent_chain=true`. `type` is required (400 when missing or invalid); an
//! unknown id, or an id of the other kind, is 404; all errors are problem+json.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use super::errors::{bad_request, first, query_pairs, resource_not_found};
use crate::generator::{OrgUnitKind, SimOrgUnit};

/// `GET /v2/org-units/{id}`.
pub(crate) async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let Some(kind) = first(&pairs, "type").and_then(OrgUnitKind::parse) else {
        return bad_request("Query parameter 'type' is required: department or team.");
    };
    let with_chain = match first(&pairs, "include_parent_chain") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return bad_request("Query parameter 'include_parent_chain' must be a boolean."),
    };
    if id.parse::<i64>().is_err() {
        return bad_request("Provided request parameters are invalid.");
    }
    let state = shared.state();
    let Some(unit) = find(&state.org_units, &id, kind) else {
        return resource_not_found("The org unit was not found.");
    };
    let mut body = json!({
        "id": unit.id,
        "type": kind.as_str(),
        "name": unit.name,
        "abbreviation": abbreviation(&unit.name),
        "description": format!("{} {}", unit.name, kind.as_str()),
        "parent_id": unit.parent_id,
    });
    if with_chain {
        body["parent_chain"] = Value::from(parent_chain(&state.org_units, unit));
    }
    axum::Json(body).into_response()
}

fn find<'a>(units: &'a [SimOrgUnit], id: &str, kind: OrgUnitKind) -> Option<&'a SimOrgUnit> {
    units.iter().find(|unit| unit.id == id && unit.kind == kind)
}

fn abbreviation(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphabetic)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Ids of the ancestors of `unit`, nearest first (bounded against cycles).
fn parent_chain(units: &[SimOrgUnit], unit: &SimOrgUnit) -> Vec<String> {
    let mut chain = Vec::new();
    let mut next = unit.parent_id.clone();
    while let Some(parent_id) = next {
        if chain.contains(&parent_id) || chain.len() > units.len() {
            break;
        }
        next = find(units, &parent_id, unit.kind).and_then(|parent| parent.parent_id.clone());
        chain.push(parent_id);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, parent: Option<&str>) -> SimOrgUnit {
        SimOrgUnit {
            id: id.into(),
            kind: OrgUnitKind::Department,
            name: format!("Unit {id}"),
            parent_id: parent.map(str::to_string),
        }
    }

    #[test]
    fn chain_walks_up_and_survives_cycles() {
        let units = vec![unit("1", None), unit("2", Some("1")), unit("3", Some("2"))];
        assert_eq!(parent_chain(&units, &units[2]), ["2", "1"]);
        assert!(parent_chain(&units, &units[0]).is_empty());
        let cyclic = vec![unit("1", Some("2")), unit("2", Some("1"))];
        assert_eq!(parent_chain(&cyclic, &cyclic[0]), ["2", "1"]);
    }

    #[test]
    fn abbreviation_takes_three_letters() {
        assert_eq!(abbreviation("Platform"), "PLA");
        assert_eq!(abbreviation("Go"), "GO");
    }
}
