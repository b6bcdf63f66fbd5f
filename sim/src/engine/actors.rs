//! Every account of a run: a wallet derived from `(seed, name)` and the role it plays.
//!
//! Agents are indexed by [`AgentId`] in creation order, so iteration order (and therefore the
//! order of transactions) never depends on a hash map.

use std::collections::BTreeMap;

use alloy_primitives::Address;
use olsim_chain::{Origin, SignedTx, TxRequest, Wallet};

use crate::scenario::AttackKind;

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
    agents: Vec<Agent>,
    by_address: BTreeMap<Address, AgentId>,
}

impl Actors {
    /// An empty registry whose keys derive from `seed`, whose agents' transactions are
    /// signed or impersonated as `origin` says (`run.impersonate`).
    pub fn new(seed: u64, origin: Origin) -> Self {
        Self {
            seed,
            origin,
            agents: Vec::new(),
            by_address: BTreeMap::new(),
        }
    }

    /// Agent `id`'s transaction `req` with its next nonce: signed by its wallet, or
    /// impersonated under `run.impersonate`.
    pub fn transaction(&mut self, id: AgentId, chain_id: u64, req: TxRequest) -> SignedTx {
        let origin = self.origin;
        let wallet = &mut self.get_mut(id).wallet;
        match origin {
            Origin::Signed => wallet.sign(chain_id, req),
            Origin::Impersonated => wallet.impersonate(chain_id, req),
        }
    }

    /// Adds the agent `name` with `role` and returns its id.
    pub fn add(&mut self, name: String, role: Role) -> AgentId {
        let wallet = Wallet::derive(self.seed, &name);
        let id = AgentId(self.agents.len() as u32);
        self.by_address.insert(wallet.address(), id);
        self.agents.push(Agent { name, role, wallet });
        id
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
