//! RFC 6962 (section 2.1) hashing: leaves, nodes, the root of the first
//! `n` leaves, and consistency proofs between two sizes.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// One leaf of the log: the head of one ledger chain when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The chain: a run's id, or `""` for the events of no run (and the
    /// one chain of a SQLite ledger).
    pub chain: String,
    /// The number of the event in its chain (from 1).
    pub n: u64,
    /// That event's hash, as the ledger stores it (hex).
    pub hash: String,
}

impl Leaf {
    /// The bytes hashed as the leaf: a version tag, then each field with
    /// its length, so that no two leaves encode alike.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.chain.len() + self.hash.len());
        out.extend_from_slice(b"airlock-leaf/v1\n");
        for field in [self.chain.as_bytes(), self.hash.as_bytes()] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.n.to_be_bytes());
        out
    }

    /// The leaf's hash in the tree.
    pub fn tree_hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash of `leaves` (already leaf-hashed); the empty tree's
/// is `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The proof that the tree of the first `m` of `leaves` is a prefix of the
/// tree of all of them (RFC 6962 2.1.2). `None` when `m` is larger than the
/// list.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m > leaves.len() {
        return None;
    }
    if m == 0 || m == leaves.len() {
        return Some(Vec::new());
    }
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows the tree of size `m` with root `old` to be a
/// prefix of the tree of size `n` with root `new` (RFC 9162 2.1.4.2).
pub fn verify_consistency(m: u64, old: &Hash, n: u64, new: &Hash, proof: &[Hash]) -> bool {
    if m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && old == new;
    }
    if m == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*old);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old && sr == *new && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[i as u8])).collect()
    }

    #[test]
    fn the_empty_tree_and_one_leaf_are_as_rfc_6962_defines_them() {
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962's test vector: the leaf hash of the empty string.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let one = leaves(1);
        assert_eq!(root(&one), one[0]);
    }

    #[test]
    fn the_root_splits_at_the_largest_power_of_two_below_n() {
        let l = leaves(5);
        let expected = node_hash(
            &node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
            &l[4],
        );
        assert_eq!(root(&l), expected);
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }

    #[test]
    fn every_prefix_is_proven_consistent_and_a_changed_leaf_is_not() {
        for n in 1..=20usize {
            let all = leaves(n);
            for m in 0..=n {
                let proof = consistency_proof(m, &all).unwrap();
                let old = root(&all[..m]);
                assert!(
                    verify_consistency(m as u64, &old, n as u64, &root(&all), &proof),
                    "{m} of {n}"
                );
                if m > 0 && m < n {
                    // A log whose first m leaves were rewritten.
                    let mut forked = all.clone();
                    forked[m - 1] = leaf_hash(b"rewritten");
                    assert!(
                        !verify_consistency(m as u64, &old, n as u64, &root(&forked), &proof),
                        "forked {m} of {n}"
                    );
                    let forked_proof = consistency_proof(m, &forked).unwrap();
                    assert!(
                        !verify_consistency(
                            m as u64,
                            &old,
                            n as u64,
                            &root(&forked),
                            &forked_proof
                        ),
                        "forked proof {m} of {n}"
                    );
                }
            }
        }
        assert_eq!(consistency_proof(3, &leaves(2)), None);
        assert!(!verify_consistency(3, &[0; 32], 2, &[0; 32], &[]));
    }

    #[test]
    fn leaves_encode_without_ambiguity() {
        let a = Leaf {
            chain: "ab".into(),
            n: 1,
            hash: "c".into(),
        };
        let b = Leaf {
            chain: "a".into(),
            n: 1,
            hash: "bc".into(),
        };
        assert_ne!(a.encode(), b.encode());
        assert_ne!(a.tree_hash(), b.tree_hash());
    }
}
