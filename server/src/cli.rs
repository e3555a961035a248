//! The `qahub` command line: serve, and the operator's commands that call the same
//! domain functions as the pages and the API.

use clap::{Parser, Subcommand};

use app::{
    actor::{Actor, RequestMeta},
    people::{server::service, Role},
    state::AppState,
    tokens::{
        server::{lifecycle, service as tokens},
        CreateToken, ExpiresIn, Scope, TokenOwner,
    },
};

use crate::config::{Config, DatabaseArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(name = "qahub", version, about = "QA Hub: a self-hostable test-management hub")]
pub struct Cli {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and the API.
    Serve(ServeArgs),
    /// Operator tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Suspend or reactivate a tenant (workspace), or grant it a host name.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Suspend or reactivate a user, by email.
    #[command(subcommand)]
    User(UserCommand),
    /// Copy the SQLite database to FILE while the server runs (never overwrites FILE).
    Backup { file: std::path::PathBuf },
    /// Put a backup in place of the database (the server stopped), then migrate it.
    Restore { file: std::path::PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant and its owner.
    Bootstrap {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// The owner's password (or set QAHUB_PASSWORD).
        #[arg(long, env = "QAHUB_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Add a person to an existing tenant.
    AddUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "QAHUB_PASSWORD", hide_env_values = true)]
        password: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for an owner or admin; prints the full token, alone, on stdout.
    Create {
        #[arg(long)]
        tenant: String,
        /// The owner or admin the token belongs to.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// read, write, admin (comma-separated; the highest counts).
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Restrict to these project keys (default: all projects).
        #[arg(long, value_delimiter = ',')]
        projects: Option<Vec<String>>,
        /// never, 30d or 90d.
        #[arg(long, default_value = "never")]
        expires: String,
        /// user (stops when that person is suspended or leaves) or workspace (a service token).
        #[arg(long, default_value = "user")]
        owner: String,
        /// Only from these addresses: CIDRs, comma-separated (with the workspace's allowlist).
        #[arg(long)]
        ip_allowlist: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Suspend a person everywhere: their sign-ins and their own API tokens stop (their
    /// workspace tokens keep working). Lists the tokens that stop.
    Suspend {
        email: String,
        /// Only list the tokens that would stop; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Reactivate a suspended person.
    Activate { email: String },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    Suspend {
        name: String,
    },
    Activate {
        name: String,
    },
    /// Host names a workspace claims: other workspaces' tokens get 401 on them. Only the
    /// operator grants them, and never an address or localhost.
    #[command(subcommand)]
    Host(HostCommand),
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Grant a host name (a DNS name such as qa.acme.example) to a workspace.
    Add { tenant: String, host: String },
    /// Withdraw a host name from a workspace.
    Remove { tenant: String, host: String },
}

/// Runs an operator command; what it prints goes to stdout, errors come back.
pub async fn run_admin(db: DatabaseArgs, command: Command) -> anyhow::Result<()> {
    // Operator commands need the database, not the web server's settings.
    let settings = app::state::Settings {
        bcrypt_cost: std::env::var("QAHUB_BCRYPT_COST").ok().and_then(|c| c.parse().ok()).unwrap_or(10),
        ..Default::default()
    };
    let config = Config::plain(db.database_url, "127.0.0.1:0".parse()?, settings);
    let state: AppState = crate::build_state(&config).await?;
    let fail = |e: app::error::AppError| anyhow::anyhow!(e.message);
    match command {
        Command::Serve(_) | Command::Backup { .. } | Command::Restore { .. } => {
            unreachable!("serve, backup and restore do not open the database as the other commands do")
        }
        Command::Admin(AdminCommand::Bootstrap { tenant, email, password }) => {
            let user =
                service::bootstrap(&state, service::NewOwner { tenant: &tenant, email: &email, password: &password })
                    .await
                    .map_err(fail)?;
            println!("created workspace {:?} with owner {}", user.tenant_name, user.email);
        }
        Command::Admin(AdminCommand::AddUser { tenant, email, password, role }) => {
            let role = Role::parse(&role).map_err(fail)?;
            let user = service::add_user(&state, &tenant, &email, &password, role).await.map_err(fail)?;
            println!("added {} to {:?} as {}", user.email, user.tenant_name, role.as_str());
        }
        Command::Token(TokenCommand::Create {
            tenant,
            email,
            name,
            scopes,
            projects,
            expires,
            owner,
            ip_allowlist,
        }) => {
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scope {s:?}: expected read, write or admin"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let expires_in: ExpiresIn = serde_json::from_value(serde_json::Value::String(expires.clone()))
                .map_err(|_| anyhow::anyhow!("unknown expiry {expires:?}: expected never, 30d or 90d"))?;
            let owner = TokenOwner::parse(&owner)
                .ok_or_else(|| anyhow::anyhow!("unknown owner {owner:?}: expected user or workspace"))?;
            let user = service::member_of(&state, &tenant, &email).await.map_err(fail)?;
            let ip_allowlist = ip_allowlist.map(|list| app::tokens::split_list(&list));
            let request = CreateToken {
                name,
                scopes,
                projects,
                expires_in: Some(expires_in),
                expires_at: None,
                owner,
                ip_allowlist,
            };
            let meta = RequestMeta { ip: None, user_agent: Some("qahub CLI".into()) };
            let created = lifecycle::create(&state, &Actor::User(user), &meta, request).await.map_err(fail)?;
            println!("{}", created.token);
        }
        Command::Tenant(TenantCommand::Suspend { name }) => {
            service::set_tenant_status(&state, &name, true).await.map_err(fail)?;
            println!("workspace {name:?} suspended");
        }
        Command::Tenant(TenantCommand::Activate { name }) => {
            service::set_tenant_status(&state, &name, false).await.map_err(fail)?;
            println!("workspace {name:?} active");
        }
        Command::Tenant(TenantCommand::Host(cmd)) => {
            let (tenant, host, add) = match &cmd {
                HostCommand::Add { tenant, host } => (tenant, host, true),
                HostCommand::Remove { tenant, host } => (tenant, host, false),
            };
            let host = app::tenants::server::set_host(&state, tenant, host, add).await.map_err(fail)?;
            println!("{host} {} workspace {tenant:?}", if add { "granted to" } else { "withdrawn from" });
        }
        Command::User(UserCommand::Suspend { email, dry_run }) => {
            let user_id = service::user_id(&state, &email).await.map_err(fail)?;
            let (stopping, _) = tokens::stopping_with(&state, &user_id, None).await.map_err(fail)?;
            if !dry_run {
                service::suspend_account(&state, &email, true).await.map_err(fail)?;
            }
            let verb = match (dry_run, stopping.len()) {
                (true, 0) => "would stop no API tokens".to_string(),
                (true, n) => format!("would stop {n} API token(s):"),
                (false, 0) => "suspended; no API tokens stopped".to_string(),
                (false, n) => format!("suspended; {n} API token(s) stopped:"),
            };
            println!("user {email} {verb}");
            for (workspace, t) in stopping {
                let used =
                    t.last_used_at.map_or_else(|| "never used".to_string(), |at| format!("last used {}", at.date()));
                println!(
                    "  {workspace}\t{}\t{}\t{}\t{used}",
                    t.masked(),
                    t.name,
                    t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
                );
            }
        }
        Command::User(UserCommand::Activate { email }) => {
            service::suspend_account(&state, &email, false).await.map_err(fail)?;
            println!("user {email} active");
        }
    }
    state.db.close().await;
    Ok(())
}
