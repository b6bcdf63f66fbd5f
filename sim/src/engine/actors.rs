//! Every account of a run: a wallet derived from `(seed, name)` and the role it plays.
//!
//! Agents are indexed by [`AgentId`] in creation order, so iteration order (and therefore the
//! order of transactions) never depends on a hash map.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::Address;
use olsim_chain::{Origin, SignatureMemo, SignedTx, TxRequest, Wallet};
use rayon::prelude::*;

use crate::scenario::AttackKind;

/// Fewest keys one rayon task derives or signs with: each takes tens of microseconds, so
/// smaller tasks cost more in scheduling than they save.
const KEY_CHUNK: usize = 64;

/// Index of an agent in the [`Actors`] registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u32);

/// What an agent does in the run; attackers carry the kind of attack they mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Deploys the protocol and holds the genesis supply.
    Admin,
    /// Settles rewards and slashes harmful data (its own key, not the admin's).
    Attributor,
    /// May cancel governance proposals before they execute.
    Guardian,
    /// Receives the treasury share of fees and slashed stakes.
    Treasury,
    /// Member of the OpenCircle grant committee.
    Committee,
    /// Creates a Datanet and appoints its reviewers.
    Curator,
    /// Reviews contributions to a Datanet.
    Reviewer,
    /// Contributes data honestly.
    Contributor,
    /// Trains adapters and registers models.
    Developer,
    /// Pays for inferences.
    User,
    /// Stakes OPEN and votes.
    Staker,
    /// Receives an OpenCircle grant and ships a model.
    Grantee,
    /// An attacker of this kind.
    Attacker(AttackKind),
}

/// One account of the run.
#[derive(Debug)]
pub struct Agent {
    /// Stable name the key derives from (`"contributor-17"`).
    pub name: String,
    /// What it does.
    pub role: Role,
    /// Its key and next nonce.
    pub wallet: Wallet,
}

/// The registry of agents.
#[derive(Debug)]
pub struct Actors {
    seed: u64,
    origin: Origin,
    signatures: Option<Arc<SignatureMemo>>,
    agents: Vec<Agent>,
    by_address: BTreeMap<Address, AgentId>,
}

impl Actors {
    /// An empty registry whose keys derive from `seed`, whose agents' transactions are
    /// signed or impersonated as `origin` says (`run.impersonate`), taking signatures made
    /// before from `signatures` (and keeping theirs there).
    pub fn new(seed: u64, origin: Origin, signatures: Option<Arc<SignatureMemo>>) -> Self {
        Self {
            seed,
            origin,
            signatures,
            agents: Vec::new(),
            by_address: BTreeMap::new(),
        }
    }

    /// Each agent's transaction `req`, in order, with its next nonce: signed by its wallet,
    /// or impersonated under `run.impersonate`. Nonces are taken in order, then the
    /// transactions are sealed on the rayon pool (signing is the costly part; each
    /// signature is a pure function of the key and transaction, so the bytes do not depend
    /// on the thread count).
    pub fn transactions(
        &mut self,
        chain_id: u64,
        reqs: impl IntoIterator<Item = (AgentId, TxRequest)>,
    ) -> Vec<SignedTx> {
        let unsigned: Vec<_> = reqs
            .into_iter()
            .map(|(id, req)| (id, self.get_mut(id).wallet.take_nonce(chain_id, req)))
            .collect();
        let (origin, memo) = (self.origin, self.signatures.as_deref());
        unsigned
            .into_par_iter()
            .with_min_len(KEY_CHUNK)
            .map(|(id, tx)| self.get(id).wallet.seal(tx, origin, memo))
            .collect()
    }

    /// Adds the agent `name` with `role` and returns its id.
    pub fn add(&mut self, name: String, role: Role) -> AgentId {
        self.add_all(vec![(name, role)])[0]
    }

    /// Adds each agent `(name, role)` in order and returns their ids. Their keys are
    /// derived on the rayon pool (a public key costs tens of microseconds, and a scale run
    /// adds about 100,000 agents at once); each is a pure function of `(seed, name)`.
    pub fn add_all(&mut self, agents: Vec<(String, Role)>) -> Vec<AgentId> {
        let seed = self.seed;
        let wallets: Vec<Wallet> = agents
            .par_iter()
            .with_min_len(KEY_CHUNK)
            .map(|(name, _)| Wallet::derive(seed, name))
            .collect();
        let mut ids = Vec::with_capacity(agents.len());
        for ((name, role), wallet) in agents.into_iter().zip(wallets) {
            let id = AgentId(self.agents.len() as u32);
            self.by_address.insert(wallet.address(), id);
            self.agents.push(Agent { name, role, wallet });
            ids.push(id);
        }
        ids
    }

    /// The agent `id`.
    pub fn get(&self, id: AgentId) -> &Agent {
        &self.agents[id.0 as usize]
    }

    /// The agent `id`, mutably (to sign with its wallet).
    pub fn get_mut(&mut self, id: AgentId) -> &mut Agent {
        &mut self.agents[id.0 as usize]
    }

    /// Address of agent `id`.
    pub fn address(&self, id: AgentId) -> Address {
        self.get(id).wallet.address()
    }

    /// The agent owning `address`, if it is one of ours.
    pub fn by_address(&self, address: Address) -> Option<AgentId> {
        self.by_address.get(&address).copied()
    }

    /// Every agent in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (AgentId, &Agent)> {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, a)| (AgentId(i as u32), a))
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}
