//! Merkle trees of per-epoch rewards, built exactly as `AttributionRewards` verifies them.
//!
//! The contract pays `(account, amount)` for one (model, epoch) against a root posted by the
//! attributor. A leaf is
//! `keccak256(bytes.concat(keccak256(abi.encode(modelId, epoch, account, amount))))` (double
//! hashed, so no 64-byte inner node can pass for a leaf; committing to its (model, epoch), so
//! a root posted for another one proves nothing), and a proof is folded with sorted-pair hashing:
//! `node = keccak256(min(node, p) ++ max(node, p))` for each proof element `p`.
//!
//! [`RewardTree`] is deterministic: leaves are sorted by hash before the tree is built, so
//! the root depends only on the set of entries, never on their input order. A level with an
//! odd number of nodes carries its last node up unchanged; that node's proof simply has no
//! element for that level, which the contract's verifier accepts since the proof length is
//! free.

use std::collections::HashMap;

use alloy_primitives::{Address, B256, U256, keccak256};

/// Why a [`RewardTree`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// No entries: a root must commit to at least one payment (the contract refuses a
    /// zero root, and an empty tree has no meaningful one).
    #[error("a reward tree needs at least one (account, amount) entry, got none")]
    Empty,
    /// The same account appears twice; the contract lets each account claim once per
    /// (model, epoch), so its amounts must be merged before building the tree.
    #[error(
        "account {account} appears more than once (amounts {first} and {second}); merge its entries into one"
    )]
    DuplicateAccount {
        /// The repeated account.
        account: Address,
        /// Amount of its first entry.
        first: U256,
        /// Amount of its later entry.
        second: U256,
    },
    /// The amounts add up to more than a `uint256` holds, so no total could be posted.
    #[error("the amounts add up to more than 2^256 - 1 token wei")]
    TotalOverflow,
}

/// The (model, epoch) a reward tree pays for; every leaf commits to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// On-chain model id.
    pub model_id: U256,
    /// Settlement epoch (`AttributionRewards.currentEpoch()` when the root is posted).
    pub epoch: u64,
}

/// The leaf `AttributionRewards.claim` recomputes for `account` claiming `amount` in `scope`:
/// `keccak256(bytes.concat(keccak256(abi.encode(modelId, epoch, account, amount))))`.
pub fn leaf(scope: Scope, account: Address, amount: U256) -> B256 {
    let mut encoded = [0u8; 128];
    encoded[..32].copy_from_slice(&scope.model_id.to_be_bytes::<32>());
    encoded[56..64].copy_from_slice(&scope.epoch.to_be_bytes());
    encoded[76..96].copy_from_slice(account.as_slice());
    encoded[96..].copy_from_slice(&amount.to_be_bytes::<32>());
    keccak256(keccak256(encoded))
}

/// Hash of two nodes in sorted order, `keccak256(min(a, b) ++ max(a, b))`, as the contract
/// combines a node with its proof element.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// Whether `proof` leads from `leaf` to `root`, by the same fold as
/// `AttributionRewards.claim`: each proof element is hashed with the running node in sorted
/// order. An empty proof verifies exactly when the leaf is the root.
pub fn verify(root: B256, leaf: B256, proof: &[B256]) -> bool {
    proof.iter().fold(leaf, |node, p| hash_pair(node, *p)) == root
}

/// A Merkle tree over one epoch's rewards, from which the attributor posts
/// [`root`](Self::root) and [`total`](Self::total) and each recipient claims with its
/// [`proof`](Self::proof).
#[derive(Clone, Debug)]
pub struct RewardTree {
    /// Levels from the sorted leaves (index 0) up to the root (last, one node).
    levels: Vec<Vec<B256>>,
    /// Each account's amount and the position of its leaf in `levels[0]`.
    positions: HashMap<Address, (U256, usize)>,
    total: U256,
}

impl RewardTree {
    /// Builds the tree over `entries` for `scope`, each an account and the amount it may claim.
    ///
    /// Fails on an empty list, on an account listed twice, or when the amounts overflow a
    /// `uint256`. Zero amounts are allowed (the contract accepts a zero claim).
    pub fn new(scope: Scope, entries: &[(Address, U256)]) -> Result<Self, MerkleError> {
        if entries.is_empty() {
            return Err(MerkleError::Empty);
        }
        let mut amounts: HashMap<Address, U256> = HashMap::with_capacity(entries.len());
        let mut total = U256::ZERO;
        for &(account, amount) in entries {
            if let Some(&first) = amounts.get(&account) {
                return Err(MerkleError::DuplicateAccount {
                    account,
                    first,
                    second: amount,
                });
            }
            amounts.insert(account, amount);
            total = total
                .checked_add(amount)
                .ok_or(MerkleError::TotalOverflow)?;
        }

        let mut leaves: Vec<(B256, Address, U256)> = entries
            .iter()
            .map(|&(account, amount)| (leaf(scope, account, amount), account, amount))
            .collect();
        // Canonical order: by leaf hash (distinct accounts give distinct leaves).
        leaves.sort_unstable_by_key(|(hash, _, _)| *hash);
        let positions = leaves
            .iter()
            .enumerate()
            .map(|(i, &(_, account, amount))| (account, (amount, i)))
            .collect();

        let mut levels = vec![leaves.iter().map(|(hash, _, _)| *hash).collect::<Vec<_>>()];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().expect("at least the leaf level");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => hash_pair(*a, *b),
                    [carried] => *carried,
                    _ => unreachable!("chunks(2) yields one or two nodes"),
                })
                .collect();
            levels.push(above);
        }
        Ok(Self {
            levels,
            positions,
            total,
        })
    }

    /// The root to post with `AttributionRewards.postRoot`. For a single entry it is that
    /// entry's [`leaf`].
    pub fn root(&self) -> B256 {
        self.levels.last().expect("a tree has at least one level")[0]
    }

    /// Sum of all amounts: the `total` to reserve with `postRoot`.
    pub fn total(&self) -> U256 {
        self.total
    }

    /// Number of entries (leaves).
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Always false: a tree holds at least one entry.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The amount `account` may claim, if it is in the tree.
    pub fn amount(&self, account: Address) -> Option<U256> {
        self.positions.get(&account).map(|&(amount, _)| amount)
    }

    /// The proof `account` submits with `AttributionRewards.claim`, leaf to root; `None`
    /// if the account is not in the tree. Levels where the account's node was carried up
    /// without a sibling contribute no element.
    pub fn proof(&self, account: Address) -> Option<Vec<B256>> {
        let &(_, mut position) = self.positions.get(&account)?;
        let mut proof = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(position ^ 1) {
                proof.push(*sibling);
            }
            position /= 2;
        }
        Some(proof)
    }

    /// Every entry with its amount, in the tree's canonical (leaf hash) order.
    pub fn entries(&self) -> Vec<(Address, U256)> {
        let mut entries: Vec<(Address, U256, usize)> = self
            .positions
            .iter()
            .map(|(&account, &(amount, position))| (account, amount, position))
            .collect();
        entries.sort_unstable_by_key(|&(_, _, position)| position);
        entries
            .into_iter()
            .map(|(account, amount, _)| (account, amount))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::b256;
    use proptest::prelude::*;

    const S: Scope = Scope {
        model_id: U256::from_limbs([3, 0, 0, 0]),
        epoch: 5,
    };

    fn account(i: u8) -> Address {
        Address::repeat_byte(i)
    }

    fn sample(n: u8) -> Vec<(Address, U256)> {
        (1..=n)
            .map(|i| (account(i), U256::from(u64::from(i) * 1_000)))
            .collect()
    }

    #[test]
    fn leaf_matches_solidity_encoding() {
        // keccak256(bytes.concat(keccak256(abi.encode(uint256(3), uint64(5),
        // address(0x11..11), uint256(1000))))), from the ABI encoding written out by hand.
        let mut encoded = Vec::new();
        encoded.extend_from_slice(&U256::from(3).to_be_bytes::<32>());
        encoded.extend_from_slice(&U256::from(5).to_be_bytes::<32>());
        encoded.extend_from_slice(&[0u8; 12]);
        encoded.extend_from_slice(&[0x11; 20]);
        encoded.extend_from_slice(&U256::from(1000).to_be_bytes::<32>());
        let expected = keccak256(keccak256(&encoded));
        assert_eq!(leaf(S, account(0x11), U256::from(1000)), expected);
        assert_ne!(
            leaf(S, account(0x11), U256::from(1000)),
            keccak256(&encoded)
        );
        let other = Scope { epoch: 6, ..S };
        assert_ne!(leaf(other, account(0x11), U256::from(1000)), expected);
    }

    #[test]
    fn hash_pair_is_symmetric() {
        let a = b256!("0x0000000000000000000000000000000000000000000000000000000000000001");
        let b = b256!("0x0000000000000000000000000000000000000000000000000000000000000002");
        assert_eq!(hash_pair(a, b), hash_pair(b, a));
        assert_eq!(
            hash_pair(a, b),
            keccak256([a.as_slice(), b.as_slice()].concat())
        );
    }

    #[test]
    fn empty_and_duplicate_inputs_are_refused() {
        assert_eq!(RewardTree::new(S, &[]).unwrap_err(), MerkleError::Empty);
        let err = RewardTree::new(
            S,
            &[
                (account(1), U256::from(5)),
                (account(2), U256::from(6)),
                (account(1), U256::from(7)),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            MerkleError::DuplicateAccount {
                account: account(1),
                first: U256::from(5),
                second: U256::from(7),
            }
        );
        assert!(err.to_string().contains("appears more than once"));
        assert_eq!(
            RewardTree::new(S, &[(account(1), U256::MAX), (account(2), U256::from(1))])
                .unwrap_err(),
            MerkleError::TotalOverflow
        );
    }

    #[test]
    fn single_entry_root_is_its_leaf() {
        let tree = RewardTree::new(S, &[(account(9), U256::from(42))]).unwrap();
        assert_eq!(tree.root(), leaf(S, account(9), U256::from(42)));
        assert_eq!(tree.proof(account(9)), Some(vec![]));
        assert_eq!(tree.total(), U256::from(42));
        assert!(verify(
            tree.root(),
            leaf(S, account(9), U256::from(42)),
            &[]
        ));
        assert!(!verify(
            tree.root(),
            leaf(S, account(9), U256::from(43)),
            &[]
        ));
    }

    #[test]
    fn two_entries_root_is_their_sorted_pair() {
        let entries = sample(2);
        let tree = RewardTree::new(S, &entries).unwrap();
        let (a, b) = (
            leaf(S, entries[0].0, entries[0].1),
            leaf(S, entries[1].0, entries[1].1),
        );
        assert_eq!(tree.root(), hash_pair(a, b));
        assert_eq!(tree.proof(entries[0].0), Some(vec![b]));
        assert_eq!(tree.proof(entries[1].0), Some(vec![a]));
    }

    #[test]
    fn odd_node_is_carried_up_without_a_sibling() {
        let tree = RewardTree::new(S, &sample(3)).unwrap();
        let last = tree.entries()[2].0;
        // The third leaf is paired with nothing at the bottom level: one proof element only.
        assert_eq!(tree.proof(last).unwrap().len(), 1);
        for (account, _) in tree.entries()[..2].iter() {
            assert_eq!(tree.proof(*account).unwrap().len(), 2);
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        for n in 1..=17 {
            let entries = sample(n);
            let tree = RewardTree::new(S, &entries).unwrap();
            assert_eq!(tree.len(), entries.len());
            for &(who, amount) in &entries {
                let proof = tree.proof(who).unwrap();
                assert!(
                    verify(tree.root(), leaf(S, who, amount), &proof),
                    "n={n} {who}"
                );
                assert!(!verify(
                    tree.root(),
                    leaf(S, who, amount + U256::from(1)),
                    &proof
                ));
                assert!(!verify(tree.root(), leaf(S, account(200), amount), &proof));
            }
            assert_eq!(tree.proof(account(200)), None);
        }
    }

    fn entries_strategy() -> impl Strategy<Value = Vec<(Address, U256)>> {
        prop::collection::btree_map(any::<[u8; 20]>(), any::<u128>(), 1..40).prop_map(|m| {
            m.into_iter()
                .map(|(a, v)| (Address::from(a), U256::from(v)))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn prop_every_entry_proves_and_nothing_else_does(
            entries in entries_strategy(),
            bump in 1u64..,
            stranger in any::<[u8; 20]>(),
        ) {
            let tree = RewardTree::new(S, &entries).unwrap();
            let stranger = Address::from(stranger);
            let expected: U256 = entries.iter().map(|(_, v)| *v).sum();
            prop_assert_eq!(tree.total(), expected);
            for &(who, amount) in &entries {
                let proof = tree.proof(who).unwrap();
                prop_assert!(proof.len() <= 6);
                prop_assert!(verify(tree.root(), leaf(S, who, amount), &proof));
                prop_assert!(!verify(tree.root(), leaf(S, who, amount + U256::from(bump)), &proof));
                if tree.amount(stranger).is_none() {
                    prop_assert!(!verify(tree.root(), leaf(S, stranger, amount), &proof));
                }
            }
            if entries.len() == 1 {
                prop_assert_eq!(tree.root(), leaf(S, entries[0].0, entries[0].1));
            }
        }

        #[test]
        fn prop_root_ignores_input_order(
            (entries, shuffled) in entries_strategy()
                .prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle())),
        ) {
            let a = RewardTree::new(S, &entries).unwrap();
            let b = RewardTree::new(S, &shuffled).unwrap();
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(a.entries(), b.entries());
            for &(who, _) in &entries {
                prop_assert_eq!(a.proof(who), b.proof(who));
            }
        }
    }
}
