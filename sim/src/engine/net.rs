//! The chain side of a run: the node, the agents who sign on it, what they sent, the
//! deployed protocol and the books read back from its events. Every stage that transacts
//! takes a [`Net`]; none of them reaches the chain any other way.

use alloy_primitives::Address;
use alloy_sol_types::SolCall;
use olsim_chain::{CallRequest, Chain, ChainError, Deployment, Receipt};

use super::actors::{Actors, AgentId};
use super::books::Books;
use super::txs::{Action, TxLog, send};
use super::{EngineError, Timers, Work};

/// The chain, its agents and what they did on it.
pub struct Net {
    /// The node (embedded or anvil).
    pub chain: Box<dyn Chain>,
    /// Every agent of the run, with its wallet.
    pub actors: Actors,
    /// Transactions included and refused.
    pub log: TxLog,
    /// The protocol's contract addresses.
    pub deployment: Deployment,
    /// The deployer, who queues and executes passed proposals (anyone may).
    pub admin: AgentId,
    /// The attributor: settles reward pools and slashes harmful contributions.
    pub attributor: AgentId,
    /// The guardian: may cancel governance proposals before they execute.
    pub guardian: AgentId,
    /// What the event logs said so far.
    pub books: Books,
    /// Wall-clock seconds of setup and of chain work.
    pub timers: Timers,
}

impl Net {
    /// Sends `actions` (in order, in blocks; see [`send`]), books the events of those
    /// included and returns one receipt, or `None` for a refusal, per action.
    pub fn send(
        &mut self,
        epoch: u32,
        actions: Vec<Action>,
    ) -> Result<Vec<Option<Receipt>>, EngineError> {
        let start = std::time::Instant::now();
        let receipts = send(
            self.chain.as_mut(),
            &mut self.actors,
            &mut self.log,
            epoch,
            actions,
        )?;
        for receipt in receipts.iter().flatten() {
            self.books.observe(&self.deployment, receipt);
        }
        self.timers.add(Work::Chain, start);
        Ok(receipts)
    }

    /// The result of the read-only `call` on contract `to`, at the chain's head.
    pub fn view<T: SolCall>(&mut self, to: Address, call: &T) -> Result<T::Return, EngineError> {
        Ok(olsim_chain::client::view(self.chain.as_mut(), to, call)?)
    }

    /// Whether `action` would succeed in the next block: a read-only call in the pending
    /// block, so an action that is not yet allowed is not sent to revert.
    pub fn would_succeed(&mut self, action: &Action) -> Result<bool, EngineError> {
        let call = self.chain.call(&CallRequest {
            from: self.address(action.agent),
            to: Some(action.to),
            data: action.data.clone(),
            value: action.value,
        });
        match call {
            Ok(_) => Ok(true),
            Err(ChainError::Reverted { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The address of `agent`.
    pub fn address(&self, agent: AgentId) -> Address {
        self.actors.address(agent)
    }
}
