//! Merkle reward claims against the real `AttributionRewards` contract on the embedded
//! chain: roots built by `olsim_chain::merkle::RewardTree` are posted by the attributor and
//! every entry claims with its proof, once.

use alloy_primitives::{Address, B256, U256};
use olsim_chain::client::{transact, view};
use olsim_chain::contracts::{AttributionRewards, InferenceMarket, ModelRegistry, OpenToken};
use olsim_chain::merkle::{RewardTree, Scope, leaf, verify};
use olsim_chain::protocol::OPEN;
use olsim_chain::{Chain, ChainError, Deployment, EmbeddedChain, ProtocolParams, Roles, Wallet};
use proptest::prelude::*;

const SEED: u64 = 0x5eed;
const EPOCH: u64 = 1;
const SCOPE: Scope = Scope {
    model_id: U256::from_limbs([1, 0, 0, 0]),
    epoch: EPOCH,
};
/// Inferences paid for: at 1 OPEN each with the default 40% contributors' share, the model's
/// pool holds 400 OPEN.
const INFERENCES: u32 = 1_000;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000_000_000_000u128)
}

/// A deployed protocol with one registered model whose contributors' pool is funded.
struct Setup {
    chain: EmbeddedChain,
    deployment: Deployment,
    attributor: Wallet,
    relayer: Wallet,
    model_id: U256,
    pool: U256,
}

fn setup() -> Setup {
    let mut chain = EmbeddedChain::new(Default::default());
    let mut admin = Wallet::derive(SEED, "admin");
    let mut user = Wallet::derive(SEED, "user");
    let relayer = Wallet::derive(SEED, "relayer");
    let attributor = Wallet::derive(SEED, "attributor");
    for who in [
        admin.address(),
        user.address(),
        relayer.address(),
        attributor.address(),
    ] {
        chain.deposit(who, eth(10)).unwrap();
    }
    let committee: Vec<Address> = (0..3)
        .map(|i| Wallet::derive(SEED, &format!("committee-{i}")).address())
        .collect();
    let treasury = Wallet::derive(SEED, "treasury").address();
    let deployment = Deployment::deploy(
        &mut chain,
        &mut admin,
        treasury,
        &committee,
        Roles {
            attributor: attributor.address(),
            guardian: committee[0],
        },
        &ProtocolParams::default(),
    )
    .unwrap();

    let price = OPEN;
    transact(
        &mut chain,
        &mut admin,
        deployment.models,
        &ModelRegistry::registerModelCall {
            baseModel: B256::repeat_byte(0xba),
            adapterHash: B256::repeat_byte(0xad),
            datanetIds: vec![],
            kind: 0,
            pricePerInference: price,
        },
    )
    .unwrap();
    let model_id = U256::from(1);

    let fee = price * U256::from(INFERENCES);
    transact(
        &mut chain,
        &mut admin,
        deployment.token,
        &OpenToken::transferCall {
            to: user.address(),
            amount: fee,
        },
    )
    .unwrap();
    transact(
        &mut chain,
        &mut user,
        deployment.token,
        &OpenToken::approveCall {
            spender: deployment.market,
            amount: fee,
        },
    )
    .unwrap();
    transact(
        &mut chain,
        &mut user,
        deployment.market,
        &InferenceMarket::payInferenceCall {
            modelId: model_id,
            count: INFERENCES,
            maxFee: fee,
        },
    )
    .unwrap();
    let pool = view(
        &mut chain,
        deployment.rewards,
        &AttributionRewards::poolOfCall { modelId: model_id },
    )
    .unwrap();
    assert_eq!(
        pool,
        U256::from(400) * OPEN,
        "40% of the fee funds the pool"
    );

    Setup {
        chain,
        deployment,
        attributor,
        relayer,
        model_id,
        pool,
    }
}

impl Setup {
    fn post_root(&mut self, tree: &RewardTree) -> Result<(), ChainError> {
        transact(
            &mut self.chain,
            &mut self.attributor,
            self.deployment.rewards,
            &AttributionRewards::postRootCall {
                modelId: self.model_id,
                epoch: EPOCH,
                root: tree.root(),
                total: tree.total(),
            },
        )
        .map(|_| ())
    }

    fn claim(
        &mut self,
        account: Address,
        amount: U256,
        proof: Vec<B256>,
    ) -> Result<(), ChainError> {
        transact(
            &mut self.chain,
            &mut self.relayer,
            self.deployment.rewards,
            &AttributionRewards::claimCall {
                modelId: self.model_id,
                epoch: EPOCH,
                account,
                amount,
                proof,
            },
        )
        .map(|_| ())
    }

    fn balance(&mut self, who: Address) -> U256 {
        self.deployment.balance_of(&mut self.chain, who).unwrap()
    }

    fn reserved(&mut self) -> U256 {
        view(
            &mut self.chain,
            self.deployment.rewards,
            &AttributionRewards::reservedOfCall {
                modelId: self.model_id,
                epoch: EPOCH,
            },
        )
        .unwrap()
    }

    fn books_balance(&mut self) {
        let ledger = self.deployment.ledger(&mut self.chain).unwrap();
        ledger.check_books().unwrap();
    }
}

fn reason(err: &ChainError) -> &str {
    err.revert_reason()
        .unwrap_or_else(|| panic!("expected a revert, got {err}"))
}

fn account(i: u16) -> Address {
    Wallet::derive(SEED, &format!("contributor-{i}")).address()
}

#[test]
fn every_entry_claims_once_and_bad_proofs_are_refused() {
    let mut s = setup();
    let entries: Vec<(Address, U256)> = [120u64, 75, 50, 33, 20, 1, 0]
        .iter()
        .enumerate()
        .map(|(i, &open)| (account(i as u16), U256::from(open) * OPEN))
        .collect();
    let tree = RewardTree::new(SCOPE, &entries).unwrap();
    assert!(tree.total() <= s.pool);

    // Nothing to claim before a root is posted.
    let (who, amount) = entries[0];
    let err = s.claim(who, amount, tree.proof(who).unwrap()).unwrap_err();
    assert!(reason(&err).starts_with("NoRoot("), "{err}");

    s.post_root(&tree).unwrap();
    let rewards = s.deployment.rewards;
    let root = view(
        &mut s.chain,
        rewards,
        &AttributionRewards::rootOfCall {
            modelId: s.model_id,
            epoch: EPOCH,
        },
    )
    .unwrap();
    assert_eq!(root, tree.root());
    assert_eq!(s.reserved(), tree.total());
    let pool_after = view(
        &mut s.chain,
        rewards,
        &AttributionRewards::poolOfCall {
            modelId: s.model_id,
        },
    )
    .unwrap();
    assert_eq!(pool_after, s.pool - tree.total());
    s.books_balance();

    // Wrong proofs: another entry's proof, a wrong amount, an account not in the tree.
    let (a, a_amount) = entries[0];
    let (b, _) = entries[1];
    let wrong = [
        (a, a_amount, tree.proof(b).unwrap()),
        (a, a_amount + U256::from(1), tree.proof(a).unwrap()),
        (account(999), a_amount, tree.proof(a).unwrap()),
        (a, a_amount, vec![]),
    ];
    for (who, amount, proof) in wrong {
        assert!(!verify(tree.root(), leaf(SCOPE, who, amount), &proof));
        let err = s.claim(who, amount, proof).unwrap_err();
        assert!(reason(&err).starts_with("InvalidProof("), "{err}");
    }

    // Every entry claims; the relayer submits, the account is paid.
    for &(who, amount) in &entries {
        let before = s.balance(who);
        s.claim(who, amount, tree.proof(who).unwrap()).unwrap();
        assert_eq!(s.balance(who), before + amount, "{who} got its reward");
        let claimed = view(
            &mut s.chain,
            rewards,
            &AttributionRewards::isClaimedCall {
                _0: s.model_id,
                _1: EPOCH,
                _2: who,
            },
        )
        .unwrap();
        assert!(claimed);
        s.books_balance();
    }
    assert_eq!(s.reserved(), U256::ZERO);

    // Nobody claims twice, with the right proof or any other.
    for &(who, amount) in &entries {
        let err = s.claim(who, amount, tree.proof(who).unwrap()).unwrap_err();
        assert!(reason(&err).starts_with("DoubleClaim("), "{err}");
    }
    let err = s.claim(a, a_amount, tree.proof(b).unwrap()).unwrap_err();
    assert!(reason(&err).starts_with("DoubleClaim("), "{err}");

    // The epoch's root cannot be replaced.
    let err = s.post_root(&tree).unwrap_err();
    assert!(reason(&err).starts_with("EpochAlreadySettled("), "{err}");
    s.books_balance();
}

#[test]
fn single_entry_tree_claims_with_an_empty_proof() {
    let mut s = setup();
    let who = account(0);
    let amount = s.pool;
    let tree = RewardTree::new(SCOPE, &[(who, amount)]).unwrap();
    assert_eq!(tree.root(), leaf(SCOPE, who, amount));
    s.post_root(&tree).unwrap();
    s.claim(who, amount, vec![]).unwrap();
    assert_eq!(s.balance(who), amount);
    let err = s.claim(who, amount, vec![]).unwrap_err();
    assert!(reason(&err).starts_with("DoubleClaim("), "{err}");
    s.books_balance();
}

#[test]
fn a_root_reserving_more_than_the_pool_is_refused() {
    let mut s = setup();
    let tree =
        RewardTree::new(SCOPE, &[(account(0), s.pool), (account(1), U256::from(1))]).unwrap();
    let err = s.post_root(&tree).unwrap_err();
    assert!(reason(&err).starts_with("InsufficientPool("), "{err}");
}

/// Up to 11 accounts, each at most a twelfth of the 400 OPEN pool, so the total always fits.
fn entry_sets() -> impl Strategy<Value = Vec<(u16, u128)>> {
    let max = 400 * 1_000_000_000_000_000_000u128 / 12;
    prop::collection::btree_map(any::<u16>(), 0..=max, 1..12).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_trees_pay_exactly_their_total_once(raw in entry_sets()) {
        let mut s = setup();
        let entries: Vec<(Address, U256)> = raw
            .iter()
            .map(|&(i, amount)| (account(i), U256::from(amount)))
            .collect();
        let tree = RewardTree::new(SCOPE, &entries).unwrap();
        prop_assert!(tree.total() <= s.pool);
        s.post_root(&tree).unwrap();

        let rewards_before = s.balance(s.deployment.rewards);
        let mut claimed = U256::ZERO;
        for &(who, amount) in &entries {
            let before = s.balance(who);
            s.claim(who, amount, tree.proof(who).unwrap()).unwrap();
            prop_assert_eq!(s.balance(who), before + amount);
            claimed += amount;
        }
        prop_assert_eq!(claimed, tree.total());
        prop_assert_eq!(rewards_before - s.balance(s.deployment.rewards), tree.total());
        prop_assert_eq!(s.reserved(), U256::ZERO);

        for &(who, amount) in &entries {
            let err = s.claim(who, amount, tree.proof(who).unwrap()).unwrap_err();
            prop_assert!(reason(&err).starts_with("DoubleClaim("), "{}", err);
        }
        s.books_balance();
    }
}
