//! Issue 4: team hierarchy, department renames, and deep supervisor chains.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::spawn_app;
use crate::webhooks::{live_tenant, wait_learnamp};
use personio_sync_sim::generator::OrgUnitKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_level_department_tree_and_a_five_deep_supervisor_chain_arrive_intact() {
    let app = spawn_app(200, 71).await;
    let view = live_tenant(&app, "tree", json!({"team_hierarchy": true})).await;
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    let company = app.personio.company();
    let departments: HashMap<String, (String, Option<String>)> = company
        .org_units
        .iter()
        .filter(|unit| unit.kind == OrgUnitKind::Department)
        .map(|unit| (unit.id.clone(), (unit.name.clone(), unit.parent_id.clone())))
        .collect();
    let teams = app.learnamp.teams();
    let team_by_ext: HashMap<String, _> = teams
        .iter()
        .filter_map(|team| {
            team.integration_external_id
                .clone()
                .map(|ext| (ext, team.clone()))
        })
        .collect();
    let team_by_id: HashMap<u64, _> = teams.iter().map(|team| (team.id, team.clone())).collect();
    let mut max_depth = 0;
    for (id, team) in &team_by_ext {
        let (name, parent) = departments
            .get(id)
            .expect("every managed team is a department");
        assert_eq!(&team.name, name);
        let parent_ext = team
            .parent_team_id
            .and_then(|parent_id| team_by_id.get(&parent_id))
            .and_then(|parent| parent.integration_external_id.clone());
        assert_eq!(&parent_ext, parent, "team {id} parent");
        let mut depth = 0;
        let mut current = team.parent_team_id;
        while let Some(parent_id) = current {
            depth += 1;
            current = team_by_id[&parent_id].parent_team_id;
        }
        max_depth = max_depth.max(depth);
    }
    assert!(
        max_depth >= 2,
        "a three-level tree: deepest team has {max_depth} ancestors"
    );

    // The deepest active supervisor chain in Personio is mirrored by managers.
    let people: HashMap<String, _> = app
        .personio
        .employees()
        .into_iter()
        .map(|p| (p.employee.id.clone(), p))
        .collect();
    let users: HashMap<String, _> = app
        .learnamp
        .users()
        .into_iter()
        .filter_map(|user| user.integration_external_id.clone().map(|ext| (ext, user)))
        .collect();
    let chain_of = |id: &str| {
        let mut chain = vec![id.to_string()];
        while let Some(boss) = people[chain.last().unwrap()].employee.supervisor_id.clone() {
            if chain.contains(&boss) || people.get(&boss).is_none_or(|b| b.employee.is_inactive()) {
                break;
            }
            chain.push(boss);
        }
        chain
    };
    let deepest = people
        .values()
        .filter(|p| !p.employee.is_inactive())
        .map(|p| chain_of(&p.employee.id))
        .max_by_key(Vec::len)
        .unwrap();
    assert!(deepest.len() >= 6, "a chain five deep: {deepest:?}");
    for pair in deepest.windows(2) {
        let report = &users[&pair[0]];
        let manager = &users[&pair[1]];
        assert_eq!(
            report.manager_id,
            Some(manager.id),
            "{} reports to {}",
            pair[0],
            pair[1]
        );
    }

    // Nothing changed: a second sync writes nothing, hierarchy included.
    app.learnamp.log.clear();
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    app.admin("POST", "/admin/tenants/tree/sync", None).await;
    app.wait_for_sync("tree", previous.as_deref()).await;
    assert!(
        app.learnamp.log.writes().is_empty(),
        "{:?}",
        app.learnamp.log.writes()
    );

    // A renamed department renames its team (through webhooks).
    let (department_id, _) = team_by_ext
        .iter()
        .find(|(id, _)| {
            people.values().any(|p| {
                !p.employee.is_inactive()
                    && p.employee.department.as_ref().is_some_and(|d| &d.id == *id)
            })
        })
        .unwrap();
    for person in people.values().filter(|p| {
        p.employee
            .department
            .as_ref()
            .is_some_and(|d| &d.id == department_id)
    }) {
        let mut renamed = person.clone();
        renamed.employee.department.as_mut().unwrap().name = "Renamed Department".into();
        app.personio.upsert_employee(renamed);
    }
    let department_id = department_id.clone();
    wait_learnamp(&app, "team renamed", |app| {
        app.learnamp.teams().iter().any(|t| {
            t.integration_external_id.as_deref() == Some(department_id.as_str())
                && t.name == "Renamed Department"
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_teams_stay_unless_remove_empty_teams_is_set() {
    let app = spawn_app(60, 73).await;
    live_tenant(&app, "empty", json!({})).await;
    let people = app.personio.employees();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for person in people.iter().filter(|p| !p.employee.is_inactive()) {
        *counts
            .entry(person.employee.department.clone().unwrap().id)
            .or_default() += 1;
    }
    let (smallest, _) = counts
        .iter()
        .min_by_key(|(id, count)| (**count, (*id).clone()))
        .unwrap();
    let (target, _) = counts
        .iter()
        .filter(|(id, _)| *id != smallest)
        .max_by_key(|(_, count)| **count)
        .unwrap();
    let target_ref = people
        .iter()
        .find_map(|p| p.employee.department.clone().filter(|d| &d.id == target))
        .unwrap();
    for person in people.iter().filter(|p| {
        p.employee
            .department
            .as_ref()
            .is_some_and(|d| &d.id == smallest)
    }) {
        let mut moved = person.clone();
        moved.employee.department = Some(target_ref.clone());
        app.personio.upsert_employee(moved);
    }
    let smallest = smallest.clone();
    let team_exists = |app: &crate::helpers::TestApp| {
        app.learnamp
            .teams()
            .iter()
            .any(|t| t.integration_external_id.as_deref() == Some(smallest.as_str()))
    };
    app.wait_for("empty", std::time::Duration::from_secs(20), |view| {
        view["pending_events"] == 0
    })
    .await;
    let previous = app.view("empty").await["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    app.admin("POST", "/admin/tenants/empty/sync", None).await;
    app.wait_for_sync("empty", previous.as_deref()).await;
    assert!(team_exists(&app), "an empty team stays by default");

    let (status, body) = app
        .admin(
            "PATCH",
            "/admin/tenants/empty",
            Some(&json!({"settings": {"remove_empty_teams": true}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_learnamp(&app, "empty team removed", |app| !team_exists(app)).await;
    assert_eq!(
        app.learnamp.users().len(),
        people.iter().filter(|p| !p.employee.is_inactive()).count(),
        "users are kept"
    );
}
