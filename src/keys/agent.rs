//! Ed25519 keys held by ssh-agent (`SSH_AUTH_SOCK`), as upstream stmgr uses them:
//! the operator names the public key, and the private half never leaves the agent
//! (or the hardware token behind it). The agent signs the data itself with pure
//! Ed25519, so a signature made this way is the same as one made from the key file.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Result};
use ed25519_dalek::VerifyingKey;
use ssh_agent_client_rs::{Client, Identity};

/// An Ed25519 key in ssh-agent.
pub struct AgentKey {
    public: VerifyingKey,
    identity: ssh_key::PublicKey,
    socket: PathBuf,
    client: Mutex<Client>,
}

impl AgentKey {
    /// Find `public` among the agent's identities.
    pub fn find(public: VerifyingKey) -> Result<AgentKey> {
        let Some(socket) = std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from) else {
            bail!("this is a public key, so its private half must be in ssh-agent, but SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add the key, or give the private key file");
        };
        let mut client = Client::connect(&socket)
            .map_err(|e| anyhow!("cannot reach ssh-agent at SSH_AUTH_SOCK={}: {e}", socket.display()))?;
        let ids = client
            .list_all_identities()
            .map_err(|e| anyhow!("ssh-agent at {}: listing keys failed: {e}", socket.display()))?;
        let identity = ids
            .into_iter()
            .find_map(|id| match id {
                Identity::PublicKey(pk) => {
                    let pk = pk.into_owned();
                    (pk.key_data().ed25519().map(|k| k.0) == Some(*public.as_bytes())).then_some(pk)
                }
                _ => None,
            })
            .ok_or_else(|| {
                anyhow!(
                    "ssh-agent at {} does not hold this key's private half: ssh-add it (ssh-add -L lists what it holds)",
                    socket.display()
                )
            })?;
        Ok(AgentKey { public, identity, socket, client: Mutex::new(client) })
    }

    pub fn public(&self) -> &VerifyingKey {
        &self.public
    }

    /// Pure Ed25519 over `msg`, by the agent; checked before it is returned.
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 64]> {
        let mut client = self.client.lock().map_err(|_| anyhow!("ssh-agent connection poisoned"))?;
        let sig = client
            .sign(&self.identity, msg)
            .map_err(|e| anyhow!("ssh-agent at {} refused to sign: {e}", self.socket.display()))?;
        let bytes: [u8; 64] = sig
            .as_bytes()
            .try_into()
            .map_err(|_| anyhow!("ssh-agent returned a {}-byte signature, expected 64", sig.as_bytes().len()))?;
        self.public
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| anyhow!("ssh-agent returned a signature that does not verify under the key"))?;
        Ok(bytes)
    }
}
