//! Workloads shared by the benches.
//!
//! [`TxWorkload`] is the chain throughput workload of the chain issue: Datanet contributions,
//! inference payments and push reward settlements, as pre-signed transactions that replay
//! identically on every backend from the same prepared state.

use alloy_primitives::{U256, keccak256};
use olsim_chain::client::{prepare, transact};
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, InferenceMarket, ModelRegistry, OpenToken,
};
use olsim_chain::protocol::OPEN;
use olsim_chain::{Chain, ChainError, Deployment, ProtocolParams, Roles, SignedTx, Wallet};

/// Inferences bought per payment transaction.
const INFERENCES_PER_PAYMENT: u32 = 10;
/// Gas limit for contributions and payments; settlements get more per recipient.
const TX_GAS: u64 = 600_000;

/// Price per inference: 0.1 OPEN.
fn price() -> U256 {
    OPEN / U256::from(10)
}

/// A deployed protocol with funded, approved contributors and users.
pub struct TxWorkload {
    d: Deployment,
    attributor: Wallet,
    contributors: Vec<Wallet>,
    users: Vec<Wallet>,
    contributors_bps: u16,
}

impl TxWorkload {
    /// Deploys the protocol on `chain` and prepares `contributors` and `users`.
    pub fn setup<C: Chain + ?Sized>(
        chain: &mut C,
        seed: u64,
        contributors: usize,
        users: usize,
    ) -> Result<Self, ChainError> {
        let mut admin = Wallet::derive(seed, "admin");
        let attributor = Wallet::derive(seed, "attributor");
        let mut contributors: Vec<Wallet> = (0..contributors)
            .map(|i| Wallet::derive(seed, &format!("contributor-{i}")))
            .collect();
        let mut users: Vec<Wallet> = (0..users)
            .map(|i| Wallet::derive(seed, &format!("user-{i}")))
            .collect();
        let eth = U256::from(10u64).pow(U256::from(18));
        for w in contributors
            .iter()
            .chain(&users)
            .chain([&admin, &attributor])
        {
            chain.deposit(w.address(), eth)?;
        }
        let params = ProtocolParams {
            review_quorum: 1,
            grant_approvals: 1,
            ..ProtocolParams::default()
        };
        let treasury = Wallet::derive(seed, "treasury").address();
        let committee = [admin.address()];
        let roles = Roles {
            attributor: attributor.address(),
            guardian: admin.address(),
        };
        let d = Deployment::deploy(chain, &mut admin, treasury, &committee, roles, &params)?;
        let create = DatanetRegistry::createDatanetCall {
            name: "bench".into(),
            domain: "finance".into(),
        };
        transact(chain, &mut admin, d.datanets, &create)?;
        let register = ModelRegistry::registerModelCall {
            baseModel: Default::default(),
            adapterHash: keccak256(b"bench-adapter"),
            datanetIds: vec![U256::from(1)],
            kind: 0,
            pricePerInference: price(),
        };
        transact(chain, &mut admin, d.models, &register)?;
        let mut setup = Vec::new();
        for (wallets, spender) in [(&mut contributors, d.datanets), (&mut users, d.market)] {
            for w in wallets.iter_mut() {
                let fund = OpenToken::transferCall {
                    to: w.address(),
                    amount: U256::from(1_000_000) * OPEN,
                };
                setup.push(prepare(chain, &mut admin, d.token, &fund, TX_GAS)?);
                let approve = OpenToken::approveCall {
                    spender,
                    amount: U256::MAX,
                };
                setup.push(prepare(chain, w, d.token, &approve, TX_GAS)?);
            }
        }
        for result in chain.send_batch(setup) {
            result?;
        }
        Ok(Self {
            d,
            attributor,
            contributors,
            users,
            contributors_bps: params.fee_split.contributors_bps,
        })
    }

    /// Signs round `round` of the workload against the chain's current nonces: one
    /// contribution per contributor, one payment per user, then one settlement paying half
    /// of the round's contributor fees to the contributors (as settlement epoch `round`, which
    /// must be the contract's current epoch: replay a round on a state prepared in it).
    pub fn sign_round<C: Chain + ?Sized>(
        &mut self,
        chain: &mut C,
        round: u64,
    ) -> Result<Vec<SignedTx>, ChainError> {
        let d = self.d;
        for w in self
            .contributors
            .iter_mut()
            .chain(self.users.iter_mut())
            .chain([&mut self.attributor])
        {
            w.set_nonce(chain.nonce(w.address())?);
        }
        let mut txs = Vec::new();
        for (i, w) in self.contributors.iter_mut().enumerate() {
            let contribute = DatanetRegistry::contributeCall {
                datanetId: U256::from(1),
                contentHash: keccak256(format!("bench-{round}-{i}")),
                recordCount: 100,
                stake: U256::from(100) * OPEN,
            };
            txs.push(prepare(chain, w, d.datanets, &contribute, TX_GAS)?);
        }
        for w in self.users.iter_mut() {
            let pay = InferenceMarket::payInferenceCall {
                modelId: U256::from(1),
                count: INFERENCES_PER_PAYMENT,
                maxFee: U256::MAX,
            };
            txs.push(prepare(chain, w, d.market, &pay, TX_GAS)?);
        }
        let fees = price() * U256::from(INFERENCES_PER_PAYMENT) * U256::from(self.users.len());
        let pool = fees * U256::from(self.contributors_bps) / U256::from(10_000);
        let share = pool / U256::from(2 * self.contributors.len());
        let settle = AttributionRewards::settlePushCall {
            modelId: U256::from(1),
            epoch: round,
            total: share * U256::from(self.contributors.len()),
            recipients: self.contributors.iter().map(Wallet::address).collect(),
            amounts: vec![share; self.contributors.len()],
        };
        let gas = TX_GAS + 40_000 * self.contributors.len() as u64;
        txs.push(prepare(
            chain,
            &mut self.attributor,
            d.rewards,
            &settle,
            gas,
        )?);
        Ok(txs)
    }
}
