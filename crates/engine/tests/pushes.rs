//! Pushes to a SCIM target through the engine's API, against the simulated help desk
//! (`sim::helpdesk`) after a SIS sync of the sample district: the first push creates every
//! selected account; a second sends nothing; SIS churn sends exactly the changes
//! (deactivations as `active: false`); a help desk that has staff accounts already gets
//! them adopted, not duplicated; a 429 storm is ridden out; a target that drops mid-push
//! leaves a failed, incomplete run that the next push completes; a push deactivating too
//! many is held, then approved; a dry run sends no write.

use engine::{PushOutcome, PushRequest};
use rostersync_core::directory::{Account, UserType};
use rostersync_core::plan::SyncKind;
use rostersync_core::settings::Config;
use serde_json::{Value, json};
use sim::helpdesk::Helpdesk;
use store::{RunStatus, Trigger, UserQuery};

use crate::harness::{Env, copy_sample, sample_district};

crate::on_both!(
    a_first_push_creates_the_selected_accounts_and_a_second_sends_nothing,
    sis_churn_sends_exactly_the_changes,
    staff_the_help_desk_has_are_adopted_not_duplicated,
    a_429_storm_is_ridden_out_and_a_dropped_target_resumes,
    a_mass_deactivation_is_held_then_approved,
    a_dry_run_reads_but_sends_no_write,
    two_matching_users_on_the_target_open_a_review_case,
    the_third_party_scim2_server_receives_the_directory,
    a_third_party_server_behind_a_429_storm_and_an_outage_gets_everyone_once,
);

const TOKEN: &str = "helpdesk-bearer-token";

/// The SIS source `sis` at `path` and the target `helpdesk` at `desk` (`extra` target
/// settings), its token sealed with the test key.
fn configure(env: &Env, path: &std::path::Path, desk: &Helpdesk, extra: &str) {
    configure_target(env, path, &desk.url(), TOKEN, extra);
}

/// The SIS source `sis` at `path` and the target `helpdesk` at the SCIM base `url` with
/// `token` (sealed with the test key) and `extra` target settings; retries kept short.
fn configure_target(env: &Env, path: &std::path::Path, url: &str, token: &str, extra: &str) {
    let toml = format!(
        "[network]\nallow_loopback = true\n\n[[source]]\nname = \"sis\"\nkind = \"oneroster-csv\"\npath = \"{}\"\n\n\
         [[target]]\nname = \"helpdesk\"\nkind = \"scim\"\nurl = \"{url}\"\nretry_attempts = 3\n{extra}",
        path.display(),
    );
    env.store()
        .save_config(
            &Config::from_toml(&toml).unwrap(),
            &[(
                "helpdesk".into(),
                Some(env.keyring.encrypt(token.as_bytes())),
            )],
            "test",
            env.now(),
        )
        .unwrap();
}

fn start_desk(env: &Env) -> Helpdesk {
    env.runtime.block_on(Helpdesk::start(TOKEN)).unwrap()
}

fn push(env: &Env, dry_run: bool) -> PushOutcome {
    env.with_ctx(|ctx| {
        engine::push(
            ctx,
            &PushRequest {
                target: "helpdesk".into(),
                dry_run,
                trigger: Trigger::Cli,
            },
            None,
        )
    })
    .unwrap()
}

/// The accounts the default selection pushes: active, not guardians.
fn selected(env: &Env) -> Vec<rostersync_core::directory::Account> {
    env.store()
        .list_users(&UserQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.user)
        .filter(|u| u.active && u.user_type != UserType::Guardian && u.merged_into.is_none())
        .collect()
}

fn by_external_id<'a>(users: &'a [Value], id: &str) -> &'a Value {
    users
        .iter()
        .find(|u| u["externalId"] == id)
        .unwrap_or_else(|| panic!("no user with externalId {id} on the help desk: {users:?}"))
}

fn writes(desk: &Helpdesk) -> Vec<(String, String)> {
    desk.requests()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect()
}

fn a_first_push_creates_the_selected_accounts_and_a_second_sends_nothing(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    assert_eq!(env.sync(SyncKind::Full, false).status, RunStatus::Succeeded);
    let want = selected(&env);
    assert!(want.len() >= 8, "{want:?}");

    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert!(first.complete);
    assert_eq!(first.counts.created, want.len() as u64, "{first:?}");
    assert_eq!(first.counts.errors, 0);
    let users = desk.users();
    assert_eq!(users.len(), want.len());
    for a in &want {
        let u = by_external_id(&users, &a.id.to_string());
        assert_eq!(u["active"], true);
        let user_name = a.email.clone().or(a.username.clone()).unwrap();
        assert_eq!(u["userName"], user_name.as_str());
        if let Some(first) = &a.first_name {
            assert_eq!(u["name"]["givenName"], first.as_str());
        }
    }
    // The run is recorded with an item per account, kind push.
    let run = env.store().get_run(first.run_id.unwrap()).unwrap().unwrap();
    assert_eq!(run.kind, SyncKind::Push);
    assert_eq!(run.source, "helpdesk");
    let items = env
        .store()
        .run_items(first.run_id.unwrap(), None, 0, 0)
        .unwrap();
    assert_eq!(items.len(), want.len());
    assert!(
        items.iter().all(|i| i.reason_code == "pushed_new"),
        "{items:?}"
    );

    desk.clear_requests();
    let second = push(&env, false);
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.counts.unchanged, want.len() as u64, "{second:?}");
    assert_eq!(
        (
            second.counts.created,
            second.counts.updated,
            second.counts.deactivated
        ),
        (0, 0, 0)
    );
    assert_eq!(second.http_requests, 0);
    assert!(desk.requests().is_empty(), "{:?}", desk.requests());
}

fn sis_churn_sends_exactly_the_changes(env: Env) {
    let desk = start_desk(&env);
    let path = copy_sample(&env.dir, "district");
    configure(&env, &path, &desk, "");
    env.sync(SyncKind::Full, false);
    assert_eq!(push(&env, false).status, RunStatus::Succeeded);
    // The SIS renames a teacher and drops a student.
    let (teacher, student) = churn(&env, &path);

    desk.clear_requests();
    let churned = push(&env, false);
    assert_eq!(churned.status, RunStatus::Succeeded, "{churned:?}");
    assert_eq!(
        (churned.counts.updated, churned.counts.deactivated),
        (1, 1),
        "{churned:?}"
    );
    assert_eq!(churned.counts.created, 0);
    let sent = writes(&desk);
    assert_eq!(sent.len(), 2, "exactly two writes: {sent:?}");
    assert!(sent.iter().all(|(m, _)| m == "PATCH"), "{sent:?}");
    let users = desk.users();
    let t = by_external_id(&users, &teacher.id.to_string());
    assert_eq!(t["name"]["familyName"], "Ortiz-Reyes");
    assert_eq!(t["displayName"], "Lucia Ortiz-Reyes");
    let s = by_external_id(&users, &student.id.to_string());
    assert_eq!(
        s["active"], false,
        "deactivated as active:false, not deleted"
    );
    // The teacher's item says what changed.
    let items = env
        .store()
        .run_items(churned.run_id.unwrap(), None, 0, 0)
        .unwrap();
    let item = items
        .iter()
        .find(|i| i.user_id == Some(teacher.id))
        .unwrap();
    assert_eq!(item.changes.len(), 1, "{item:?}");
    assert_eq!(item.changes[0].new.as_deref(), Some("Ortiz-Reyes"));

    desk.clear_requests();
    let quiet = push(&env, false);
    assert_eq!(quiet.http_requests, 0, "{quiet:?}");
}

fn staff_the_help_desk_has_are_adopted_not_duplicated(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    // The help desk has had Tam Nguyen's and Jay Patel's accounts for years, keyed by
    // email, in another case.
    desk.insert(json!({"userName": "Tam.Nguyen@district.k12.us", "name": {"givenName": "Tam", "familyName": "N."}, "active": true}));
    desk.insert(json!({"userName": "jpatel-helpdesk", "emails": [{"value": "jay.patel@district.k12.us", "type": "work"}], "active": true}));
    let want = selected(&env);
    let out = push(&env, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    let items = env
        .store()
        .run_items(out.run_id.unwrap(), None, 0, 0)
        .unwrap();
    assert_eq!(out.counts.linked, 2, "{items:?}");
    assert_eq!(out.counts.created, want.len() as u64 - 2);
    let users = desk.users();
    assert_eq!(users.len(), want.len(), "no duplicates: {users:?}");
    let tam = env
        .store()
        .find_user("tam.nguyen@district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    let adopted = by_external_id(&users, &tam.id.to_string());
    assert_eq!(
        adopted["name"]["familyName"], "Nguyen",
        "the directory's values replaced the help desk's"
    );
    let items = env
        .store()
        .run_items(out.run_id.unwrap(), None, 0, 0)
        .unwrap();
    let codes: Vec<&str> = items.iter().map(|i| i.reason_code.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "push_adopted").count(),
        2,
        "{codes:?}"
    );
    // Adopted users are held like created ones: nothing to send next time.
    desk.clear_requests();
    assert_eq!(push(&env, false).http_requests, 0);
}

fn a_429_storm_is_ridden_out_and_a_dropped_target_resumes(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    let want = selected(&env);
    // Two answers of 429 (Retry-After: 1 s) are waited out: nothing fails.
    desk.throttle(2, 1);
    // Four accounts go at once, each with up to three lookups before its POST: of any 13
    // requests served, in whatever order, one is a POST, and 14 cannot create all 10
    // (each account takes a lookup and a POST).
    desk.fail_after(14);
    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Failed, "{first:?}");
    assert!(!first.complete);
    assert!(
        first
            .error
            .as_deref()
            .unwrap()
            .contains("stopped answering"),
        "{first:?}"
    );
    let held_before = desk.users().len();
    assert!(held_before > 0 && held_before < want.len(), "{held_before}");
    desk.heal();
    let second = push(&env, false);
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert!(second.complete);
    let users = desk.users();
    assert_eq!(
        users.len(),
        want.len(),
        "resumed without duplicates: {users:?}"
    );
    for a in &want {
        by_external_id(&users, &a.id.to_string());
    }
    desk.clear_requests();
    assert_eq!(push(&env, false).http_requests, 0);
}

fn a_mass_deactivation_is_held_then_approved(env: Env) {
    let desk = start_desk(&env);
    configure(
        &env,
        &sample_district(),
        &desk,
        "[target.safeguards]\nmax_deactivations = 2\n",
    );
    env.sync(SyncKind::Full, false);
    assert_eq!(push(&env, false).status, RunStatus::Succeeded);
    // The target now follows teachers only: everyone else would be deactivated there.
    configure(
        &env,
        &sample_district(),
        &desk,
        "types = [\"faculty\"]\n[target.safeguards]\nmax_deactivations = 2\n",
    );
    desk.clear_requests();
    let held = push(&env, false);
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    assert!(held.counts.deactivated > 2);
    assert!(writes(&desk).is_empty(), "a held push sends nothing");
    let run = held.run_id.unwrap();
    let approval = env
        .with_ctx(|ctx| engine::approve(ctx, run, "admin", None))
        .unwrap();
    assert_eq!(
        approval.outcome.status,
        RunStatus::Succeeded,
        "{approval:?}"
    );
    assert_eq!(approval.outcome.counts.deactivated, held.counts.deactivated);
    let inactive = desk.users().iter().filter(|u| u["active"] == false).count() as u64;
    assert_eq!(inactive, held.counts.deactivated);
    let record = env.store().get_run(run).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    // A push cannot be undone.
    let undo = env.with_ctx(|ctx| engine::undo(ctx, run, "admin", false, None));
    assert!(
        undo.unwrap_err()
            .to_string()
            .contains("cannot be taken back")
    );
}

fn a_dry_run_reads_but_sends_no_write(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    let want = selected(&env);
    let dry = push(&env, true);
    assert_eq!(dry.run_id, None);
    assert_eq!(dry.requests.len(), want.len(), "{dry:?}");
    assert!(dry.requests.iter().all(|r| r.method == scim::Method::Post));
    assert!(writes(&desk).is_empty());
    assert!(desk.users().is_empty());
    assert!(
        env.store()
            .list_runs(0)
            .unwrap()
            .iter()
            .all(|r| r.kind != SyncKind::Push)
    );
}

/// The same story against a SCIM server nobody here wrote (PyPI `scim2-server`, started
/// by `test_kit::ScimServer`): first push, a no-change push, SIS churn, adoption.
fn the_third_party_scim2_server_receives_the_directory(env: Env) {
    let Some(server) = test_kit::ScimServer::start() else {
        return;
    };
    // A user the server had before rostersync: adopted by its email.
    let existing = idp::scim_target::ScimTarget::new(
        &server.url(),
        server.token(),
        engine::address_policy(&rostersync_core::settings::Network {
            allow_loopback: true,
            allow_private: false,
        }),
        std::time::Duration::from_secs(10),
        idp::http::Retry::default(),
    )
    .unwrap();
    env.runtime
        .block_on(existing.write(&scim::Request::create(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "rbaker-desk",
            "emails": [{"value": "ruth.baker@district.k12.us", "type": "work"}],
            "active": true
        }))))
        .unwrap();
    let path = copy_sample(&env.dir, "district");
    configure_target(
        &env,
        &path,
        &server.url(),
        server.token(),
        "groups = [\"class\", \"school_role\"]\n",
    );
    env.sync(SyncKind::Full, false);
    let want = selected(&env);

    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_eq!(first.counts.errors, 0, "{first:?}");
    assert_eq!(
        (first.counts.created, first.counts.linked),
        (want.len() as u64 - 1, 1)
    );
    let users = server.users();
    assert_eq!(users.len(), want.len(), "{users:?}");
    for a in &want {
        let u = by_external_id(&users, &a.id.to_string());
        assert_eq!(u["active"], true);
    }

    // The class and school groups arrive as SCIM Groups, their members the users'
    // ids on the server.
    let groups_on_server = || {
        env.runtime
            .block_on(existing.find(&scim::Request {
                method: scim::Method::Get,
                path: "/Groups?count=500".into(),
                body: None,
            }))
            .unwrap()
    };
    let ids_of = |users: &[Value]| -> std::collections::HashMap<String, String> {
        users
            .iter()
            .filter_map(|u| {
                Some((
                    u["id"].as_str()?.to_owned(),
                    u["externalId"].as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let groups = env
        .store()
        .target_groups(&["class", "school_role"])
        .unwrap();
    let pushed_ids: std::collections::HashSet<String> =
        want.iter().map(|a| a.id.to_string()).collect();
    let expected: Vec<_> = groups
        .iter()
        .filter(|g| {
            g.members
                .iter()
                .any(|m| pushed_ids.contains(&m.to_string()))
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(first.counts.groups, expected.len() as u64, "{first:?}");
    let remote_groups = groups_on_server();
    assert_eq!(remote_groups.len(), expected.len(), "{remote_groups:?}");
    let external_of = ids_of(&users);
    for g in &expected {
        let remote = remote_groups
            .iter()
            .find(|r| r.resource["externalId"] == format!("group:{}", g.id))
            .unwrap_or_else(|| panic!("group {} not on the server", g.name));
        assert_eq!(remote.resource["displayName"], g.name.as_str());
        let mut members: Vec<String> = remote.resource["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|v| external_of[v["value"].as_str().unwrap()].clone())
                    .collect()
            })
            .unwrap_or_default();
        members.sort();
        let mut wanted: Vec<String> = g
            .members
            .iter()
            .map(|m| m.to_string())
            .filter(|m| pushed_ids.contains(m))
            .collect();
        wanted.sort();
        assert_eq!(members, wanted, "members of {}", g.name);
    }

    let again = push(&env, false);
    assert_eq!(again.http_requests, 0, "{again:?}");

    let (teacher, student) = churn(&env, &path);
    let churned = push(&env, false);
    assert_eq!(churned.status, RunStatus::Succeeded, "{churned:?}");
    assert_eq!(
        (churned.counts.updated, churned.counts.deactivated),
        (1, 1),
        "{churned:?}"
    );
    // One PATCH per user, and the dropped student leaves her groups (one PATCH each).
    let student_groups = groups
        .iter()
        .filter(|g| g.members.contains(&student.id))
        .count() as u64;
    assert!(student_groups > 0);
    assert_eq!(churned.counts.groups, student_groups, "{churned:?}");
    assert_eq!(churned.http_requests, 2 + student_groups, "{churned:?}");
    let users = server.users();
    assert_eq!(
        by_external_id(&users, &teacher.id.to_string())["name"]["familyName"],
        "Ortiz-Reyes"
    );
    assert_eq!(
        by_external_id(&users, &student.id.to_string())["active"],
        false
    );
}

/// The SIS's churn in the copy of the sample district at `path`: Lucia Ortiz renamed
/// Ortiz-Reyes, Sofía García dropped (`tobedeleted`); synced. Returns their accounts.
fn churn(env: &Env, path: &std::path::Path) -> (Account, Account) {
    let users_csv = path.join("users.csv");
    let text = std::fs::read_to_string(&users_csv)
        .unwrap()
        .replace(",Lucia,Ortiz,", ",Lucia,Ortiz-Reyes,")
        .replace(
            "usr-s-5,active,2026-08-01T00:00:00Z,true,",
            "usr-s-5,tobedeleted,2026-09-01T00:00:00Z,false,",
        );
    std::fs::write(&users_csv, text).unwrap();
    let sync = env.sync(SyncKind::Full, false);
    assert_eq!(sync.status, RunStatus::Succeeded, "{sync:?}");
    let user = |key: &str| env.store().find_user(key).unwrap().unwrap().user;
    let student = user("sofia.garcia@students.district.k12.us");
    assert!(!student.active, "the SIS sync deactivated the student");
    (user("lucia.ortiz@district.k12.us"), student)
}

/// The third-party server behind a fault gate (`Helpdesk::front`): two 429s with
/// `Retry-After` are waited out, then the gate fails every request after a few; the push
/// stops incomplete, and once the server is back the next push sends the rest — every
/// account on the server exactly once.
fn a_third_party_server_behind_a_429_storm_and_an_outage_gets_everyone_once(env: Env) {
    let Some(server) = test_kit::ScimServer::start() else {
        return;
    };
    let gate = env
        .runtime
        .block_on(Helpdesk::front(&server.url()))
        .unwrap();
    configure_target(&env, &sample_district(), &gate.url(), server.token(), "");
    env.sync(SyncKind::Full, false);
    let want = selected(&env);
    gate.throttle(2, 1);
    gate.fail_after(12);
    let first = push(&env, false);
    assert_eq!(first.status, RunStatus::Failed, "{first:?}");
    assert!(!first.complete);
    let partial = server.users().len();
    assert!(
        partial > 0 && partial < want.len(),
        "{partial} of {}",
        want.len()
    );
    gate.heal();
    let second = push(&env, false);
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    let users = server.users();
    assert_eq!(users.len(), want.len(), "{users:?}");
    let mut external: Vec<&str> = users
        .iter()
        .filter_map(|u| u["externalId"].as_str())
        .collect();
    external.sort_unstable();
    external.dedup();
    assert_eq!(external.len(), want.len(), "each account once");
    assert_eq!(push(&env, false).http_requests, 0);
}

/// The help desk has two users with Jay Patel's email: neither is adopted, none is
/// created; a review case of the target opens with his account; an admin decides *create*
/// and the next push makes a user for him without looking.
fn two_matching_users_on_the_target_open_a_review_case(env: Env) {
    let desk = start_desk(&env);
    configure(&env, &sample_district(), &desk, "");
    env.sync(SyncKind::Full, false);
    for name in ["jp1", "jp2"] {
        desk.insert(json!({"userName": name, "emails": [{"value": "jay.patel@district.k12.us", "type": "work"}], "active": true}));
    }
    let jay = env
        .store()
        .find_user("jay.patel@district.k12.us")
        .unwrap()
        .unwrap()
        .user;
    let out = push(&env, false);
    assert_eq!(out.status, RunStatus::Succeeded, "{out:?}");
    assert_eq!(out.counts.skipped, 1, "{out:?}");
    let cases = env.store().review_cases(Some("open"), None, 0).unwrap();
    let case = cases
        .iter()
        .find(|c| c.source == "helpdesk")
        .unwrap_or_else(|| panic!("no push case: {cases:?}"));
    assert_eq!(case.reason_code, store::PUSH_CASE_CODE);
    assert_eq!(case.sourced_id, jay.id.to_string());
    assert_eq!(case.candidates.len(), 1);
    assert_eq!(case.candidates[0].id, jay.id);
    // Linking makes no sense for a push case.
    let refused = env
        .store()
        .resolve_case(
            case.id,
            store::CaseResolution::Link(jay.id),
            "admin",
            env.now(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("create"), "{refused}");
    // Pushed again, the case stays one case.
    push(&env, false);
    let open: Vec<_> = env
        .store()
        .review_cases(Some("open"), None, 0)
        .unwrap()
        .into_iter()
        .filter(|c| c.source == "helpdesk")
        .collect();
    assert_eq!(open.len(), 1);
    env.store()
        .resolve_case(case.id, store::CaseResolution::Create, "admin", env.now())
        .unwrap();
    let after = push(&env, false);
    assert_eq!(after.counts.created, 1, "{after:?}");
    let users = desk.users();
    let mine = by_external_id(&users, &jay.id.to_string());
    assert_eq!(mine["userName"], "jay.patel@district.k12.us");
    assert_eq!(
        users.len(),
        selected(&env).len() + 2,
        "the two old users stay"
    );
}
