//! The policy as a table: expected answers written out by hand, the README's "Who may do
//! what" checked against the functions, and a property test that no sequence of allowed
//! changes gives a token more reach than the credential making them.

use proptest::prelude::*;

use super::*;

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn reach(scope: Scope, projects: &[&str], expires_in_days: Option<i64>, owner: TokenOwner) -> Reach {
    Reach {
        scope,
        projects: if projects.is_empty() { Projects::All } else { Projects::only(projects.iter().copied()) },
        expires_at: expires_in_days.map(|d| NOW + d * DAY),
        owner,
        addresses: Addresses::Any,
    }
}

fn token(id: &str, reach: Reach, siem: bool) -> Credential {
    if siem {
        Credential::SiemKey { id: id.into(), projects: reach.projects }
    } else {
        Credential::Token { id: id.into(), reach, creator_manages: true }
    }
}

fn person(role: Role) -> Credential {
    Credential::Person { user_id: format!("{role:?}"), role }
}

/// The credentials of the table, by name.
fn credentials() -> Vec<(&'static str, Credential)> {
    use Scope::*;
    use TokenOwner::*;
    vec![
        ("owner", person(Role::Owner)),
        ("admin", person(Role::Admin)),
        ("member", person(Role::Member)),
        ("admin token", token("t-admin", reach(Admin, &[], None, User), false)),
        ("write token", token("t-write", reach(Write, &[], None, User), false)),
        ("read token", token("t-read", reach(Read, &[], None, User), false)),
        ("project admin token", token("t-proj", reach(Admin, &["P1"], None, User), false)),
        ("30-day admin token", token("t-30d", reach(Admin, &[], Some(30), User), false)),
        ("workspace admin token", token("t-ws", reach(Admin, &[], None, Workspace), false)),
        ("SIEM key", token("t-siem", reach(Read, &[], None, User), true)),
        (
            "CI-minted token",
            Credential::CiToken { id: "t-ci".into(), reach: reach(Write, &["P1"], Some(1), Workspace) },
        ),
    ]
}

/// Targets: a narrower token, a wider one (a never-expiring workspace admin token), one
/// restricted to another project.
fn targets() -> [TokenFacts; 3] {
    use Scope::*;
    use TokenOwner::*;
    let facts = |id: &str, reach| TokenFacts { id: id.into(), reach, rate_limit: None };
    [
        facts("narrow", reach(Read, &["P1"], Some(10), User)),
        facts("wide", reach(Admin, &[], None, Workspace)),
        facts("other", reach(Write, &["P2"], None, User)),
    ]
}

fn short(result: Result<(), AppError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => match e.code {
            ErrorCode::InsufficientScope => "scope",
            ErrorCode::ProjectRestricted => "project",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RestrictedEndpoint => "siem",
            ErrorCode::Conflict => "conflict",
            other => other.as_str(),
        },
    }
}

#[test]
fn token_actions_by_credential_and_target() {
    // create / change status / rename, each on [narrow, wide, other project].
    let expected: &[(&str, [&str; 3])] = &[
        ("owner", ["ok", "ok", "ok"]),
        ("admin", ["ok", "ok", "ok"]),
        ("member", ["forbidden", "forbidden", "forbidden"]),
        ("admin token", ["ok", "scope", "ok"]),
        ("write token", ["scope", "scope", "scope"]),
        ("read token", ["scope", "scope", "scope"]),
        ("project admin token", ["ok", "project", "project"]),
        ("30-day admin token", ["ok", "scope", "scope"]),
        ("workspace admin token", ["ok", "ok", "ok"]),
        ("SIEM key", ["siem", "siem", "siem"]),
        ("CI-minted token", ["scope", "scope", "scope"]),
    ];
    let creds = credentials();
    assert_eq!(creds.len(), expected.len());
    for ((name, cred), (expected_name, cells)) in creds.iter().zip(expected) {
        assert_eq!(name, expected_name);
        for (target, want) in targets().iter().zip(cells) {
            assert_eq!(short(create_token(cred, &target.reach)), *want, "{name} creates {}", target.id);
            assert_eq!(short(change_status(cred, target)), *want, "{name} disables {}", target.id);
            let renamed = target.clone();
            assert_eq!(short(edit_token(cred, target, &renamed, 1200)), *want, "{name} renames {}", target.id);
            assert_eq!(short(rotate_token(cred, target, &target.reach)), *want, "{name} rotates {}", target.id);
        }
    }
}

#[test]
fn edits_never_widen_and_tokens_never_touch_their_own_limits() {
    let creds = credentials();
    let by = |n: &str| creds.iter().find(|(name, _)| *name == n).map(|(_, c)| c.clone()).unwrap();
    let never_read =
        TokenFacts { id: "x".into(), reach: reach(Scope::Read, &[], None, TokenOwner::User), rate_limit: None };
    // A 30-day admin token may not raise a never-expiring read token to admin.
    let mut raised = never_read.clone();
    raised.reach.scope = Scope::Admin;
    assert_eq!(short(edit_token(&by("30-day admin token"), &never_read, &raised, 1200)), "scope");
    // An admin token may; but not widen a project token to all projects if it is a project token.
    assert_eq!(short(edit_token(&by("admin token"), &never_read, &raised, 1200)), "ok");
    let p1 =
        TokenFacts { id: "p".into(), reach: reach(Scope::Read, &["P1"], None, TokenOwner::User), rate_limit: None };
    let mut all = p1.clone();
    all.reach.projects = Projects::All;
    assert_eq!(short(edit_token(&by("project admin token"), &p1, &all, 1200)), "project");
    // A person's token may not turn a token into a workspace token.
    let mut ws = never_read.clone();
    ws.reach.owner = TokenOwner::Workspace;
    assert_eq!(short(edit_token(&by("admin token"), &never_read, &ws, 1200)), "scope");
    // Rate limits: never its own, others' up to the ceiling; people set any.
    let me =
        TokenFacts { id: "t-admin".into(), reach: reach(Scope::Admin, &[], None, TokenOwner::User), rate_limit: None };
    let fast = |f: &TokenFacts, n| TokenFacts { rate_limit: Some(n), ..f.clone() };
    assert_eq!(short(edit_token(&by("admin token"), &me, &fast(&me, 10), 1200)), "forbidden");
    assert_eq!(short(edit_token(&by("admin token"), &never_read, &fast(&never_read, 1200), 1200)), "ok");
    assert_eq!(short(edit_token(&by("admin token"), &never_read, &fast(&never_read, 1_000_000), 1200)), "forbidden");
    assert_eq!(short(edit_token(&by("admin"), &never_read, &fast(&never_read, 1_000_000), 1200)), "ok");
    // Expiry: cut to the credential's, never "never" from an expiring token.
    assert_eq!(bound_expiry(&by("30-day admin token"), Some(NOW + 90 * DAY)).unwrap(), Some(NOW + 30 * DAY));
    assert_eq!(short(bound_expiry(&by("30-day admin token"), None).map(drop)), "scope");
    assert_eq!(bound_expiry(&by("admin"), None).unwrap(), None);
}

#[test]
fn ip_allowlists_only_narrow() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    let office = Addresses::Only(vec![net("10.0.0.0/8")]);
    let runners = Addresses::Only(vec![net("10.1.2.0/24")]);
    let elsewhere = Addresses::Only(vec![net("192.168.0.0/16")]);
    assert!(office.covers(&runners) && !runners.covers(&office) && !office.covers(&elsewhere));
    assert!(Addresses::Any.covers(&office) && !office.covers(&Addresses::Any));
    let with = |addresses: &Addresses| Reach {
        addresses: addresses.clone(),
        ..reach(Scope::Admin, &[], None, TokenOwner::User)
    };
    let limited = token("t-office", with(&office), false);
    // Creating: within the credential's own list only.
    assert_eq!(short(create_token(&limited, &with(&runners))), "ok");
    assert_eq!(short(create_token(&limited, &with(&elsewhere))), "scope");
    assert_eq!(short(create_token(&limited, &with(&Addresses::Any))), "scope");
    // Editing: a token narrows a list, never widens it, even within its own reach.
    let facts = |a: &Addresses| TokenFacts { id: "x".into(), reach: with(a), rate_limit: None };
    assert_eq!(short(edit_token(&limited, &facts(&office), &facts(&runners), 0)), "ok");
    assert_eq!(short(edit_token(&limited, &facts(&runners), &facts(&office), 0)), "scope");
    let unlimited = token("t-any", with(&Addresses::Any), false);
    assert_eq!(short(edit_token(&unlimited, &facts(&runners), &facts(&Addresses::Any), 0)), "scope");
    // People who manage the workspace widen or clear it.
    assert_eq!(short(edit_token(&person(Role::Admin), &facts(&runners), &facts(&Addresses::Any), 0)), "ok");
}

#[test]
fn tenant_audit_member_and_project_rules() {
    let creds = credentials();
    let by = |n: &str| creds.iter().find(|(name, _)| *name == n).map(|(_, c)| c.clone()).unwrap();
    let allowlist = TenantChange { ip_allowlist: true, ..Default::default() };
    let expected = [
        ("owner", "ok"),
        ("admin", "ok"),
        ("member", "forbidden"),
        ("admin token", "ok"),
        ("write token", "scope"),
        ("read token", "scope"),
        ("project admin token", "project"),
        ("30-day admin token", "ok"),
        ("workspace admin token", "ok"),
        ("SIEM key", "siem"),
        ("CI-minted token", "scope"),
    ];
    for (name, want) in expected {
        assert_eq!(short(change_tenant(&by(name), allowlist)), want, "{name}");
    }
    let hosts = TenantChange { hosts: true, ..Default::default() };
    for (name, cred) in &creds {
        assert_eq!(short(change_tenant(cred, hosts)), "forbidden", "{name} grants a host");
    }
    assert_eq!(short(change_tenant(&Credential::Operator, hosts)), "ok");
    let rate = TenantChange { rate_limit: true, ..Default::default() };
    assert_eq!(short(change_tenant(&by("admin token"), rate)), "forbidden");
    assert_eq!(short(change_tenant(&by("admin"), rate)), "ok");
    // The longest token lifetime: owners set it; a token only shortens it.
    let lifetime = |before, after| TenantChange { max_lifetime: Some((before, after)), ..Default::default() };
    assert_eq!(short(change_tenant(&by("owner"), lifetime(Some(30), None))), "ok");
    assert_eq!(short(change_tenant(&by("admin"), lifetime(None, Some(30)))), "forbidden");
    assert_eq!(short(change_tenant(&by("member"), lifetime(None, Some(30)))), "forbidden");
    assert_eq!(short(change_tenant(&by("admin token"), lifetime(None, Some(30)))), "ok");
    assert_eq!(short(change_tenant(&by("admin token"), lifetime(Some(90), Some(30)))), "ok");
    assert_eq!(short(change_tenant(&by("admin token"), lifetime(Some(30), Some(90)))), "forbidden");
    assert_eq!(short(change_tenant(&by("admin token"), lifetime(Some(30), None))), "forbidden");
    assert_eq!(short(change_tenant(&by("project admin token"), lifetime(None, Some(30)))), "project");

    assert_eq!(read_audit(&by("admin token")).unwrap(), AuditView::All);
    assert_eq!(read_audit(&by("SIEM key")).unwrap(), AuditView::All);
    assert_eq!(read_audit(&by("project admin token")).unwrap(), AuditView::Projects(["P1".to_string()].into()));
    let siem_p1 = token("s", reach(Scope::Read, &["P1"], None, TokenOwner::User), true);
    assert_eq!(read_audit(&siem_p1).unwrap(), AuditView::Projects(["P1".to_string()].into()));
    assert_eq!(short(read_audit(&by("write token")).map(drop)), "scope");
    assert_eq!(short(read_audit(&by("member")).map(drop)), "forbidden");

    assert_eq!(short(manage_member(&by("admin"), "someone", Role::Member)), "ok");
    assert_eq!(short(manage_member(&by("admin"), "someone", Role::Owner)), "conflict");
    assert_eq!(short(manage_member(&by("owner"), "Owner", Role::Owner)), "conflict", "not yourself");
    assert_eq!(short(manage_member(&by("member"), "someone", Role::Member)), "forbidden");
    assert_eq!(short(manage_member(&by("admin token"), "someone", Role::Member)), "forbidden");
    assert_eq!(short(manage_member(&Credential::Operator, "someone", Role::Owner)), "ok");

    assert_eq!(short(create_project(&by("write token"))), "ok");
    assert_eq!(short(create_project(&by("read token"))), "scope");
    assert_eq!(short(create_project(&by("project admin token"))), "project");
    assert_eq!(short(create_project(&by("member"))), "forbidden");
}

#[test]
fn every_credential_kind_sets_out_only_on_what_it_is_for() {
    use Action::*;
    // Columns: read data, write data, tokens, audit, workspace settings, trusted CI, people.
    let expected: &[(&str, [&str; 7])] = &[
        ("owner", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("admin", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        // Members pass the first question; each action's own rule refuses them later.
        ("member", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("admin token", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("write token", ["ok", "ok", "scope", "scope", "scope", "scope", "scope"]),
        ("read token", ["ok", "scope", "scope", "scope", "scope", "scope", "scope"]),
        ("project admin token", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("30-day admin token", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("workspace admin token", ["ok", "ok", "ok", "ok", "ok", "ok", "ok"]),
        ("SIEM key", ["siem", "siem", "siem", "ok", "siem", "siem", "siem"]),
        ("CI-minted token", ["ok", "ok", "scope", "scope", "scope", "scope", "scope"]),
    ];
    let actions = [ReadTestData, WriteTestData, ManageTokens, ReadAudit, WorkspaceSettings, ManageTrust, ManagePeople];
    let creds = credentials();
    assert_eq!(creds.len(), expected.len());
    for ((name, cred), (expected_name, cells)) in creds.iter().zip(expected) {
        assert_eq!(name, expected_name);
        for (action, want) in actions.iter().zip(cells) {
            assert_eq!(short(permit(cred, *action)), *want, "{name} sets out to {action:?}");
        }
    }
    // The operator may; the server and a minting trust policy ask for nothing.
    for action in actions {
        assert_eq!(short(permit(&Credential::Operator, action)), "ok");
        assert_eq!(short(permit(&Credential::Server, action)), "forbidden");
        assert_eq!(short(permit(&Credential::TrustPolicy, action)), "forbidden");
    }
}

#[test]
fn the_server_a_minting_policy_a_siem_key_and_a_ci_token_are_refused_by_every_rule() {
    let ci = Credential::CiToken { id: "ci".into(), reach: reach(Scope::Write, &[], Some(1), TokenOwner::Workspace) };
    // A SIEM key carrying admin scope, for all projects, forever: still only the audit log.
    let siem = token("siem", Reach::full(), true);
    let small = reach(Scope::Read, &["P1"], Some(1), TokenOwner::User);
    let target = TokenFacts { id: "x".into(), reach: small.clone(), rate_limit: None };
    let all = TenantChange { ip_allowlist: true, ..Default::default() };
    for (name, cred) in
        [("server", Credential::Server), ("policy", Credential::TrustPolicy), ("SIEM", siem), ("CI", ci)]
    {
        let is_ci = name == "CI";
        assert!(create_token(&cred, &small).is_err(), "{name} creates a token");
        assert!(change_status(&cred, &target).is_err(), "{name} revokes a token");
        assert!(edit_token(&cred, &target, &target, 1200).is_err(), "{name} edits a token");
        assert!(change_tenant(&cred, all).is_err(), "{name} changes the workspace");
        assert!(manage_trust_policies(&cred, false).is_err(), "{name} manages trusted CI");
        assert!(mint_through_policy(&cred, Scope::Read, Projects::only(["P1"]), 60, NOW).is_err(), "{name} mints");
        assert!(manage_member(&cred, "x", Role::Member).is_err(), "{name} suspends");
        assert_eq!(read_audit(&cred).is_ok(), name == "SIEM", "{name} reads the audit log");
        // Test data is what a CI token is for; the others never touch it.
        assert_eq!(create_project(&cred).is_ok(), is_ci, "{name} creates a project");
        assert_eq!(edit_project(&cred).is_ok(), is_ci, "{name} edits a project");
    }
}

/// The README's "Who may do what", as the functions answer it.
fn who_may_do_what() -> String {
    let columns: Vec<(&str, Credential)> =
        credentials().into_iter().filter(|(n, _)| !matches!(*n, "30-day admin token")).collect();
    let cell = |results: Vec<Result<(), AppError>>| {
        let ok = results.iter().filter(|r| r.is_ok()).count();
        match ok {
            0 => "no",
            n if n == results.len() => "yes",
            _ => "within its reach",
        }
    };
    type Row = (&'static str, Box<dyn Fn(&Credential) -> Vec<Result<(), AppError>>>);
    let rows: Vec<Row> = vec![
        ("Read test data (projects, cases, runs, results)", Box::new(|c| vec![permit(c, Action::ReadTestData)])),
        ("Write test data (cases, runs, results, imports)", Box::new(|c| vec![permit(c, Action::WriteTestData)])),
        ("Create a token", Box::new(|c| targets().iter().map(|t| create_token(c, &t.reach)).collect())),
        (
            "Edit, disable, enable, revoke a token",
            Box::new(|c| targets().iter().map(|t| change_status(c, t)).collect()),
        ),
        ("Rotate a token", Box::new(|c| targets().iter().map(|t| rotate_token(c, t, &t.reach)).collect())),
        (
            "Read the audit log",
            Box::new(|c| {
                vec![
                    match read_audit(c) {
                        Ok(AuditView::All) => Ok(()),
                        Ok(AuditView::Projects(_)) => Err(AppError::forbidden("partial")),
                        Err(e) => Err(e),
                    },
                    read_audit(c).map(drop),
                ]
            }),
        ),
        (
            "Change workspace settings (allowlist, AI)",
            Box::new(|c| vec![change_tenant(c, TenantChange { ip_allowlist: true, ai: true, ..Default::default() })]),
        ),
        (
            "Set the workspace's token rate limit",
            Box::new(|c| vec![change_tenant(c, TenantChange { rate_limit: true, ..Default::default() })]),
        ),
        (
            "Set or lower the workspace's maximum token lifetime",
            Box::new(|c| {
                let change = |before, after| TenantChange { max_lifetime: Some((before, after)), ..Default::default() };
                vec![change_tenant(c, change(None, Some(90))), change_tenant(c, change(Some(90), Some(30)))]
            }),
        ),
        (
            "Raise or remove it",
            Box::new(|c| {
                let change = |before, after| TenantChange { max_lifetime: Some((before, after)), ..Default::default() };
                vec![change_tenant(c, change(Some(30), Some(90))), change_tenant(c, change(Some(30), None))]
            }),
        ),
        ("Grant host names", Box::new(|c| vec![change_tenant(c, TenantChange { hosts: true, ..Default::default() })])),
        (
            "Make, change or enable a trust policy (Trusted CI)",
            Box::new(|c| vec![mint_through_policy(c, Scope::Write, Projects::only(["P1"]), 600, NOW).map(drop)]),
        ),
        (
            "A trust policy for every project",
            Box::new(|c| vec![mint_through_policy(c, Scope::Write, Projects::All, 600, NOW).map(drop)]),
        ),
        ("Suspend people", Box::new(|c| vec![manage_member(c, "x", Role::Member), manage_member(c, "x", Role::Owner)])),
        ("Create a project", Box::new(|c| vec![create_project(c)])),
    ];
    let mut out = format!("| action | {} |\n", columns.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | "));
    out += &format!("|---|{}\n", "---|".repeat(columns.len()));
    for (action, answer) in &rows {
        let cells: Vec<&str> = columns.iter().map(|(_, c)| cell(answer(c))).collect();
        out += &format!("| {action} | {} |\n", cells.join(" | "));
    }
    out
}

#[test]
fn readme_who_may_do_what_matches_the_policy() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = "<!-- who-may-do-what: generated by app/src/policy_tests.rs -->\n";
    let from = readme.find(start).expect("README has the who-may-do-what table") + start.len();
    let to = readme[from..].find("<!-- /who-may-do-what -->").expect("the table ends") + from;
    let table = who_may_do_what();
    assert_eq!(readme[from..to], table, "README's table is out of date; it should read:\n{table}");
}

#[derive(Clone, Debug)]
enum Op {
    Create(Reach),
    /// A token's new reach and rate limit.
    Edit(usize, Reach, Option<u32>),
    Rotate(usize),
    /// A trust policy: scope, projects, lifetime in minutes.
    MakePolicy(Scope, Projects, i64),
    /// An exchange through policy `i`.
    Exchange(usize),
    /// Time passes (days).
    Wait(i64),
    /// Someone else changes the credential itself (its scope, projects, expiry…): what it
    /// may do from now on, and what its policies mint, follows.
    Narrow(Reach),
}

// The oracle: what "within the credential's reach" means, written out field by field
// and by hand — never through `Reach::covers` or `excess`, which the rules themselves use.

fn rank(scope: Scope) -> u8 {
    match scope {
        Scope::Read => 1,
        Scope::Write => 2,
        Scope::Admin => 3,
    }
}

fn net_inside(outer: &IpNet, inner: &IpNet) -> bool {
    match (outer, inner) {
        (IpNet::V4(o), IpNet::V4(i)) => {
            o.prefix_len() <= i.prefix_len() && o.network() <= i.network() && i.broadcast() <= o.broadcast()
        }
        (IpNet::V6(o), IpNet::V6(i)) => {
            o.prefix_len() <= i.prefix_len() && o.network() <= i.network() && i.broadcast() <= o.broadcast()
        }
        _ => false,
    }
}

/// Every field of `t` is within `mine`, at `now`; `Err` names the first field that is not.
fn oracle(mine: &Reach, t: &Reach) -> Result<(), &'static str> {
    if rank(t.scope) > rank(mine.scope) {
        return Err("scope");
    }
    match (&mine.projects, &t.projects) {
        (Projects::All, _) => {}
        (Projects::Only(_), Projects::All) => return Err("projects"),
        (Projects::Only(a), Projects::Only(b)) => {
            if b.iter().any(|p| !a.contains(p)) {
                return Err("projects");
            }
        }
    }
    match (mine.expires_at, t.expires_at) {
        (None, _) => {}
        (Some(_), None) => return Err("expiry"),
        (Some(m), Some(x)) => {
            if x > m {
                return Err("expiry");
            }
        }
    }
    if t.owner == TokenOwner::Workspace && mine.owner != TokenOwner::Workspace {
        return Err("owner kind");
    }
    match (&mine.addresses, &t.addresses) {
        (Addresses::Any, _) => {}
        (Addresses::Only(_), Addresses::Any) => return Err("address list"),
        (Addresses::Only(ms), Addresses::Only(ts)) => {
            if !ts.iter().all(|tn| ms.iter().any(|m| net_inside(m, tn))) {
                return Err("address list");
            }
        }
    }
    Ok(())
}

#[test]
fn the_oracle_refuses_each_field_on_its_own() {
    use Scope::*;
    use TokenOwner::*;
    let mine = Reach {
        addresses: Addresses::from_list(vec!["10.1.0.0/16".parse().unwrap()]),
        ..reach(Write, &["P1", "P2"], Some(30), Workspace)
    };
    let ok = Reach {
        addresses: Addresses::from_list(vec!["10.1.2.0/24".parse().unwrap()]),
        ..reach(Read, &["P1"], Some(10), User)
    };
    assert_eq!(oracle(&mine, &ok), Ok(()));
    let nets = |n: &str| Addresses::from_list(vec![n.parse().unwrap()]);
    for (bad, field) in [
        (Reach { scope: Admin, ..ok.clone() }, "scope"),
        (Reach { projects: Projects::All, ..ok.clone() }, "projects"),
        (Reach { projects: Projects::only(["P3"]), ..ok.clone() }, "projects"),
        (Reach { expires_at: None, ..ok.clone() }, "expiry"),
        (Reach { expires_at: Some(NOW + 31 * DAY), ..ok.clone() }, "expiry"),
        (Reach { addresses: Addresses::Any, ..ok.clone() }, "address list"),
        (Reach { addresses: nets("10.0.0.0/8"), ..ok.clone() }, "address list"),
        (Reach { addresses: nets("2001:db8::/32"), ..ok.clone() }, "address list"),
    ] {
        assert_eq!(oracle(&mine, &bad), Err(field), "{bad:?}");
    }
    let person_token = Reach { owner: User, ..mine.clone() };
    assert_eq!(oracle(&person_token, &Reach { owner: Workspace, ..ok }), Err("owner kind"));
}

fn any_reach() -> impl Strategy<Value = Reach> {
    let scope = prop_oneof![Just(Scope::Read), Just(Scope::Write), Just(Scope::Admin)];
    let projects = prop_oneof![
        Just(Projects::All),
        proptest::collection::btree_set(prop_oneof![Just("P1"), Just("P2"), Just("P3")], 0..3).prop_map(Projects::only),
    ];
    let expiry = prop_oneof![Just(None), (1i64..120).prop_map(|d| Some(NOW + d * DAY))];
    let owner = prop_oneof![Just(TokenOwner::User), Just(TokenOwner::Workspace)];
    let net = prop_oneof![
        Just("10.0.0.0/8"),
        Just("10.1.0.0/16"),
        Just("10.1.2.0/24"),
        Just("192.168.0.0/16"),
        Just("2001:db8::/32")
    ]
    .prop_map(|n| n.parse::<IpNet>().unwrap());
    let addresses = proptest::collection::vec(net, 0..3).prop_map(Addresses::from_list);
    (scope, projects, expiry, owner, addresses).prop_map(|(scope, projects, expires_at, owner, addresses)| Reach {
        scope,
        projects,
        expires_at,
        owner,
        addresses,
    })
}

fn any_op() -> impl Strategy<Value = Op> {
    let scope = prop_oneof![Just(Scope::Read), Just(Scope::Write), Just(Scope::Admin)];
    let rate = prop_oneof![Just(None), Just(Some(100u32)), Just(Some(1200)), Just(Some(5000))];
    prop_oneof![
        any_reach().prop_map(Op::Create),
        (0usize..8, any_reach(), rate).prop_map(|(i, r, n)| Op::Edit(i, r, n)),
        (0usize..8).prop_map(Op::Rotate),
        (scope, any_reach(), 1i64..16).prop_map(|(s, r, m)| Op::MakePolicy(s, r.projects, m)),
        (0usize..4).prop_map(Op::Exchange),
        (0i64..40).prop_map(Op::Wait),
        any_reach().prop_map(Op::Narrow),
    ]
}

/// The oracle for trust policies, by hand: only a workspace admin token for all projects
/// (not a SIEM key) makes one, and never one for every project.
fn may_make_policies(mine: &Reach, siem: bool, projects: &Projects) -> Result<(), TestCaseError> {
    prop_assert!(!siem, "a SIEM key made a policy");
    prop_assert_eq!(rank(mine.scope), 3, "a token below admin made a policy");
    prop_assert!(matches!(mine.projects, Projects::All), "a project token made a policy");
    prop_assert_eq!(mine.owner, TokenOwner::Workspace, "a person's token made a policy");
    prop_assert!(!matches!(projects, Projects::All), "a token made a policy for every project");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever a token credential tries — tokens, trust policies, exchanges through them
    /// at any later time, while its own reach changes under it — every token it made or
    /// changed is within its reach (by the hand-written oracle, at that moment), every
    /// rate limit it set is within the ceiling, and it never changes its own rate limit
    /// (its own facts are among the tokens it may try to edit).
    #[test]
    fn no_sequence_of_allowed_operations_outgrows_the_credential(
        cred_reach in any_reach(),
        siem in proptest::bool::weighted(0.2),
        existing in proptest::collection::vec(any_reach(), 1..4),
        ops in proptest::collection::vec(any_op(), 1..24),
    ) {
        const CEILING: u32 = 1200;
        let mut mine = Reach { scope: Scope::Admin, ..cred_reach };
        let mut now = NOW;
        let cred_of = |mine: &Reach| token("me", mine.clone(), siem);
        // The credential itself is token 0 ("me"): editing it is one of the things it tries.
        let mut tokens: Vec<TokenFacts> = std::iter::once(TokenFacts { id: "me".into(), reach: mine.clone(), rate_limit: None })
            .chain(existing.into_iter().enumerate().map(|(i, r)| TokenFacts { id: format!("{i}"), reach: r, rate_limit: None }))
            .collect();
        let mut policies: Vec<(Scope, Projects, i64)> = Vec::new();
        let check = |mine: &Reach, t: &Reach, what: &str| -> Result<(), TestCaseError> {
            prop_assert_eq!(oracle(mine, t), Ok(()), "{} {:?} outgrew {:?}", what, t, mine);
            Ok(())
        };
        for op in ops {
            let cred = cred_of(&mine);
            match op {
                Op::Create(r) => {
                    let Ok(at) = bound_expiry(&cred, r.expires_at) else { continue };
                    let r = Reach { expires_at: at, ..r };
                    if create_token(&cred, &r).is_ok() {
                        check(&mine, &r, "a created token")?;
                        tokens.push(TokenFacts { id: format!("{}", tokens.len()), reach: r, rate_limit: None });
                    }
                }
                Op::Edit(i, r, rate) => {
                    let i = i % tokens.len();
                    let before = tokens[i].clone();
                    let after = TokenFacts { reach: r, rate_limit: rate, ..before.clone() };
                    if edit_token(&cred, &before, &after, CEILING).is_ok() {
                        check(&mine, &before.reach, "an edited token's old state")?;
                        check(&mine, &after.reach, "an edited token")?;
                        if after.rate_limit != before.rate_limit {
                            prop_assert!(before.id != "me", "the credential changed its own rate limit");
                            prop_assert!(after.rate_limit.is_some_and(|n| n <= CEILING), "rate limit {:?}", after.rate_limit);
                        }
                        if before.id == "me" {
                            // It narrowed itself: it acts with what it has now.
                            mine = after.reach.clone();
                        }
                        tokens[i] = after;
                    }
                }
                Op::Rotate(i) => {
                    let i = i % tokens.len();
                    let old = tokens[i].clone();
                    let Ok(at) = bound_expiry(&cred, old.reach.expires_at) else { continue };
                    let new = Reach { expires_at: at, ..old.reach.clone() };
                    if rotate_token(&cred, &old, &new).is_ok() {
                        check(&mine, &old.reach, "a rotated token")?;
                        check(&mine, &new, "a rotation's new token")?;
                        tokens.push(TokenFacts { id: format!("{}", tokens.len()), reach: new, rate_limit: None });
                    }
                }
                Op::MakePolicy(scope, projects, minutes) => {
                    if let Ok(minted) = mint_through_policy(&cred, scope, projects.clone(), minutes * 60, now) {
                        check(&mine, &minted, "what a new policy mints")?;
                        may_make_policies(&mine, siem, &projects)?;
                        policies.push((scope, projects, minutes));
                    }
                }
                Op::Exchange(i) => {
                    if policies.is_empty() {
                        continue;
                    }
                    let (scope, projects, minutes) = policies[i % policies.len()].clone();
                    let minted = mint_through_policy(&cred, scope, projects, minutes * 60, now);
                    if mine.expires_at.is_some_and(|at| at <= now) {
                        prop_assert!(minted.is_err(), "a creator past its expiry mints nothing");
                    }
                    if let Ok(minted) = minted {
                        check(&mine, &minted, "a minted token")?;
                        may_make_policies(&mine, siem, &minted.projects)?;
                        prop_assert_eq!(minted.owner, TokenOwner::Workspace);
                        prop_assert!(minted.expires_at.is_some_and(|at| at > now && at <= now + minutes * 60));
                    }
                }
                Op::Wait(days) => now += days * DAY,
                Op::Narrow(r) => {
                    mine = r;
                    tokens[0].reach = mine.clone();
                }
            }
        }
    }
}

/// Boundaries and the small rules that `cargo mutants` found unguarded by these tests
/// (`Reach::excess`'s equal expiry, `covers`, `see_token`, `edit_project`, an unchanged
/// maximum lifetime, `Projects::ids`, a member and trust policies).
#[test]
fn boundaries_and_the_small_rules() {
    use Scope::*;
    use TokenOwner::*;
    let mine = reach(Admin, &[], Some(10), Workspace);
    assert!(mine.excess(&reach(Read, &[], Some(10), User)).is_none(), "the same expiry is within reach");
    let a_second_later = Reach { expires_at: Some(NOW + 10 * DAY + 1), ..reach(Read, &[], None, User) };
    assert!(mine.excess(&a_second_later).is_some(), "a second longer is not");
    assert!(mine.covers(&reach(Read, &[], Some(10), User)));
    assert!(!mine.covers(&reach(Read, &[], None, User)));

    let p1 = token("p", reach(Admin, &["P1"], None, User), false);
    assert!(see_token(&p1, &reach(Read, &["P1"], None, User)));
    assert!(!see_token(&p1, &reach(Read, &["P2"], None, User)));
    assert!(!see_token(&p1, &reach(Read, &[], None, User)), "an all-projects token is not a project token's to see");

    assert_eq!(short(edit_project(&person(Role::Member))), "forbidden");
    assert_eq!(short(edit_project(&person(Role::Admin))), "ok");
    assert_eq!(short(edit_project(&token("r", reach(Read, &[], None, User), false))), "scope");
    assert_eq!(short(edit_project(&token("w", reach(Write, &[], None, User), false))), "ok");
    assert_eq!(short(edit_project(&token("a", reach(Admin, &[], None, User), false))), "ok");

    let lifetime = |before, after| TenantChange { max_lifetime: Some((before, after)), ..Default::default() };
    let admin_token = token("t", reach(Admin, &[], None, User), false);
    assert_eq!(short(change_tenant(&admin_token, lifetime(Some(30), Some(30)))), "ok", "unchanged is not raised");
    assert_eq!(short(change_tenant(&admin_token, lifetime(Some(30), Some(31)))), "forbidden");

    assert_eq!(Projects::All.ids(), None);
    let only = Projects::only(["P1", "P2"]);
    assert_eq!(only.ids().map(|ids| ids.iter().cloned().collect::<Vec<_>>()), Some(vec!["P1".into(), "P2".into()]));

    assert_eq!(short(manage_trust_policies(&person(Role::Member), false)), "forbidden");
    assert_eq!(short(manage_trust_policies(&person(Role::Admin), false)), "ok");
}

/// The maximum token lifetime in seconds, at its edges (a `cargo mutants` run found
/// `MaxLifetime::seconds` unguarded by the app's own tests): a 30-day maximum allows an
/// expiry 30 days away to the second and refuses one a second later; a rotation is cut
/// to it; a token older than it is flagged, one exactly that old is not.
#[test]
fn the_maximum_lifetime_to_the_second() {
    let max = MaxLifetime { days: 30 };
    let thirty_days = 30 * DAY;
    assert!(max.refuse_beyond(Some(NOW + thirty_days), NOW).is_ok());
    assert!(max.refuse_beyond(Some(NOW + thirty_days + 1), NOW).is_err());
    assert!(max.refuse_beyond(None, NOW).is_err(), "never expiring is beyond any maximum");
    assert_eq!(max.cut(None, NOW), NOW + thirty_days);
    assert_eq!(max.cut(Some(NOW + 5), NOW), NOW + 5);
    assert!(!max.exceeded_by(NOW, Some(NOW + thirty_days)));
    assert!(max.exceeded_by(NOW, Some(NOW + thirty_days + 1)));
}
