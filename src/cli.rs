//! The command line: `smsdesk` (or `smsdesk serve`) runs the server; `smsdesk agent …`
//! manages agents in the configured database.

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use crate::api::validate_agent;
use crate::auth::hash_password;
use crate::config::Settings;
use crate::sms::normalize_phone;
use crate::store::{self, Store};

#[derive(Parser)]
#[command(
    name = "smsdesk",
    version,
    about = "A real-time SMS inbox for CRM agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Create an agent; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// A Twilio number of the agent (repeat for several).
        #[arg(long = "number", required = true)]
        numbers: Vec<String>,
    },
    /// List agents and their numbers.
    List,
    /// Add or remove an agent's numbers.
    Numbers {
        email: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn open(settings: &Settings) -> anyhow::Result<std::sync::Arc<Store>> {
    store::connect(&settings.database_url, std::time::Duration::from_secs(10))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "DATABASE_URL: cannot use {} ({e:#})",
                settings.database_url.redacted()
            )
        })
}

fn print_agent(a: &crate::model::Agent) {
    println!("{}\t{}\t{}\t{}", a.id, a.email, a.name, a.numbers.join(","));
}

pub async fn agent(settings: Settings, command: AgentCommand) -> anyhow::Result<()> {
    let store = open(&settings).await?;
    match command {
        AgentCommand::Add {
            email,
            name,
            numbers,
        } => {
            let password = read_password()?;
            let new = validate_agent(&email, &name, &password, &numbers)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash = hash_password(&password)?;
            let agent = store
                .create_agent(&new.email, &new.name, &hash, &new.numbers)
                .await?
                .ok_or_else(|| anyhow::anyhow!("an agent with the email {} exists", new.email))?;
            println!(
                "created agent {} <{}> with {}",
                agent.name,
                agent.email,
                agent.numbers.join(", ")
            );
        }
        AgentCommand::List => {
            let agents = store.list_agents().await?;
            if agents.is_empty() {
                println!("no agents yet: smsdesk agent add --email … --name … --number +1…");
            }
            for a in &agents {
                print_agent(a);
            }
        }
        AgentCommand::Numbers { email, add, remove } => {
            let normalize = |list: &[String]| {
                list.iter()
                    .map(|n| {
                        normalize_phone(n)
                            .ok_or_else(|| anyhow::anyhow!("`{n}` is not a phone number"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            };
            let (add, remove) = (normalize(&add)?, normalize(&remove)?);
            let (agent, _) = store
                .agent_by_email(&email.trim().to_lowercase())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no agent with the email {email}"))?;
            let agent = store.change_numbers(agent.id, &add, &remove).await?;
            print_agent(&agent);
        }
    }
    Ok(())
}
