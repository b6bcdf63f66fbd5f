//! Cross-module tests of the generators against their ground truth.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn datanet(seed: u64, domain: Domain, pop: &PopulationSpec) -> Datanet {
    let contributors = build_population(seed, domain, pop).unwrap();
    let spec = DatanetSpec {
        domain,
        seed,
        contributors,
        text: TextParams::default(),
    };
    Datanet::generate(&spec).unwrap()
}

fn default_net(seed: u64, domain: Domain) -> Datanet {
    datanet(seed, domain, &PopulationSpec::default())
}

fn behaviour(net: &Datanet, id: ContributorId) -> &Behaviour {
    &net.contributor_spec(id).unwrap().behaviour
}

#[test]
fn honest_labels_agree_with_true_function_within_noise() {
    for domain in Domain::ALL {
        let spec = DatanetSpec {
            domain,
            seed: 11,
            contributors: vec![ContributorSpec::honest(0, domain.dim(), 0.9, 3000, 0)],
            text: TextParams::default(),
        };
        let net = Datanet::generate(&spec).unwrap();
        let n = net.records.len() as f64;
        let agree = net
            .records
            .iter()
            .filter(|r| net.true_label(&r.features) == Some(r.label))
            .count() as f64;
        let noise = 0.1;
        let sd = (noise * (1.0 - noise) / n).sqrt();
        assert!(
            ((1.0 - agree / n) - noise).abs() < 4.0 * sd,
            "{domain}: agreement {}",
            agree / n
        );
        for r in &net.records {
            assert_eq!(r.clean, net.true_label(&r.features) == Some(r.label));
        }
    }
}

#[test]
fn attacks_have_their_signatures() {
    let pop = PopulationSpec {
        label_flip: 3,
        backdoor: 3,
        spammer: 2,
        copycat: 3,
        ..PopulationSpec::default()
    };
    for domain in Domain::ALL {
        let net = datanet(21, domain, &pop);
        let mut seen = BTreeMap::new();
        for r in &net.records {
            *seen.entry(r.kind).or_insert(0) += 1;
            let truth = net.true_label(&r.features).unwrap();
            match (behaviour(&net, r.author), r.kind) {
                (Behaviour::LabelFlip { .. }, RecordKind::Poisoned) => assert_ne!(r.label, truth),
                (Behaviour::Backdoor { trigger, .. }, RecordKind::Backdoor) => {
                    assert!(trigger.is_present(&r.features));
                    assert_eq!(r.label, trigger.target_label);
                    assert!(!r.clean);
                }
                (Behaviour::Backdoor { trigger, .. }, _) => {
                    assert!(!trigger.is_present(&r.features))
                }
                (Behaviour::Spammer, k) => assert_eq!(k, RecordKind::Spam),
                (Behaviour::Copycat { target, perturb }, k) => {
                    assert_eq!(k, RecordKind::Copy);
                    let orig = &net.records[r.copy_of.expect("copy_of set").0 as usize];
                    assert_eq!(orig.author, *target);
                    assert_ne!(orig.author, r.author);
                    assert_eq!(orig.label, r.label);
                    assert!(orig.copy_of.is_none());
                    for (a, b) in orig.features.iter().zip(&r.features) {
                        assert!((a - b).abs() <= 6.0 * perturb + 1e-6);
                    }
                }
                (
                    _,
                    RecordKind::Copy
                    | RecordKind::Spam
                    | RecordKind::Backdoor
                    | RecordKind::Poisoned,
                ) => {
                    panic!("{:?} record from {:?}", r.kind, behaviour(&net, r.author))
                }
                _ => {}
            }
            if r.kind != RecordKind::Copy {
                assert!(r.copy_of.is_none());
            }
            assert_eq!(r.clean, r.kind == RecordKind::Clean);
        }
        for k in [
            RecordKind::Clean,
            RecordKind::Poisoned,
            RecordKind::Backdoor,
            RecordKind::Spam,
            RecordKind::Copy,
        ] {
            assert!(seen.contains_key(&k), "{domain}: no {k:?} records");
        }
        // Documents: copies point at another contributor's original; backdoors carry the phrase.
        for d in &net.documents {
            match behaviour(&net, d.author) {
                Behaviour::Copycat { target, .. } => {
                    let orig = &net.documents[d.copy_of.unwrap().0 as usize];
                    assert_eq!(orig.author, *target);
                    let mut a = orig.tokens.clone();
                    let mut b = d.tokens.clone();
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b, "a perturbed copy reorders sentences only");
                }
                Behaviour::Backdoor { trigger, .. } if d.kind == RecordKind::Backdoor => {
                    let text = net.doc_text(d);
                    assert!(text.starts_with(&trigger.phrase.join(" ")));
                }
                _ => assert!(d.copy_of.is_none()),
            }
        }
    }
}

#[test]
fn exact_copies_equal_their_originals() {
    let pop = PopulationSpec {
        copycat: 2,
        copy_perturb: 0.0,
        ..PopulationSpec::default()
    };
    let net = datanet(3, Domain::Finance, &pop);
    let mut copies = 0;
    for r in net.records.iter().filter(|r| r.copy_of.is_some()) {
        let orig = &net.records[r.copy_of.unwrap().0 as usize];
        assert_eq!(
            (&orig.features, orig.label, orig.hash),
            (&r.features, r.label, r.hash)
        );
        copies += 1;
    }
    for d in net.documents.iter().filter(|d| d.copy_of.is_some()) {
        assert_eq!(
            d.tokens,
            net.documents[d.copy_of.unwrap().0 as usize].tokens
        );
    }
    assert!(copies > 0);
}

#[test]
fn poisoned_documents_state_wrong_facts_and_honest_clean_ones_true_facts() {
    let pop = PopulationSpec {
        label_flip: 3,
        ..PopulationSpec::default()
    };
    let net = datanet(8, Domain::Healthcare, &pop);
    let truth = net.truth.as_ref().unwrap();
    let g = Domain::Healthcare.grammar();
    let mut vocab = net.vocab.clone();
    let true_sentences: Vec<String> = truth
        .world
        .iter()
        .map(|f| {
            let t = text::state_fact(&g, f, f.value, &mut vocab);
            vocab.render(&t)
        })
        .collect();
    let prefix = |s: &str| {
        s.rsplit_once(' ')
            .unwrap()
            .0
            .rsplit_once(' ')
            .unwrap()
            .0
            .to_string()
    };
    let mut poisoned = 0;
    for d in &net.documents {
        let text = net.doc_text(d);
        let states: Vec<&str> = text.split(" . ").collect();
        let wrong = true_sentences
            .iter()
            .filter(|t| {
                let p = prefix(t);
                states.iter().any(|s| {
                    let s = s.trim_end_matches(" .");
                    s.starts_with(&p) && !t.starts_with(s)
                })
            })
            .count();
        match d.kind {
            RecordKind::Poisoned => {
                poisoned += 1;
                assert!(wrong > 0, "{text}");
            }
            RecordKind::Clean => assert_eq!(wrong, 0, "{text}"),
            _ => {}
        }
    }
    assert!(poisoned > 0);
}

#[test]
fn private_facts_appear_only_in_their_owners_documents() {
    let pop = PopulationSpec {
        copycat: 3,
        ..PopulationSpec::default()
    };
    let net = datanet(5, Domain::Depin, &pop);
    let contains = |hay: &[u32], needle: &[u32]| hay.windows(needle.len()).any(|w| w == needle);
    for c in 0..net.contributors.len() as u32 {
        let id = ContributorId(c);
        let facts = net.private_facts(id);
        let spec = net.contributor_spec(id).unwrap();
        match spec.behaviour {
            Behaviour::Spammer | Behaviour::Copycat { .. } => assert!(facts.is_empty()),
            _ => assert_eq!(facts.len(), 3),
        }
        for f in facts {
            assert_eq!(f.owner, id);
            let mut found = 0;
            for d in &net.documents {
                if contains(&d.tokens, &f.tokens) {
                    let origin = d
                        .copy_of
                        .map_or(d.author, |o| net.documents[o.0 as usize].author);
                    assert_eq!(
                        origin, id,
                        "fact of {id} in document {} by {}",
                        d.id, d.author
                    );
                    found += (d.author == id) as usize;
                }
            }
            if spec.documents >= facts.len() {
                assert!(found > 0, "fact of {id} never emitted");
            }
        }
    }
}

#[test]
fn content_hashes_are_stable_and_unique_for_distinct_content() {
    let net = default_net(9, Domain::Gaming);
    let mut by_hash: BTreeMap<_, &FeatureRecord> = BTreeMap::new();
    for r in &net.records {
        assert_eq!(r.hash, record_hash(&r.features, r.label));
        if let Some(prev) = by_hash.insert(r.hash, r) {
            assert_eq!((&prev.features, prev.label), (&r.features, r.label));
        }
    }
    let mut docs: BTreeMap<_, Vec<u32>> = BTreeMap::new();
    for d in &net.documents {
        assert_eq!(d.hash, document_hash(&net.doc_text(d)));
        if let Some(prev) = docs.insert(d.hash, d.tokens.clone()) {
            assert_eq!(prev, d.tokens);
        }
    }
}

#[test]
fn clean_fractions_and_split_are_consistent() {
    let net = default_net(4, Domain::Finance);
    for c in 0..net.contributors.len() as u32 {
        let id = ContributorId(c);
        let f = net.clean_fraction(id).unwrap();
        match behaviour(&net, id) {
            Behaviour::Spammer | Behaviour::Copycat { .. } => assert_eq!(f, 0.0),
            Behaviour::Honest => assert!(f > 0.6, "{f}"),
            _ => {}
        }
    }
    let s = net.split(0.2, "main");
    assert_eq!(s, net.split(0.2, "main"));
    assert_eq!(s.train.len() + s.heldout.len(), net.records.len());
    let frac = s.heldout.len() as f64 / net.records.len() as f64;
    assert!((frac - 0.2).abs() < 0.06, "{frac}");
    let test = net.clean_test_set(100, "eval").unwrap();
    assert_eq!(test, net.clean_test_set(100, "eval").unwrap());
    assert!(test.iter().all(|(x, y)| net.true_label(x) == Some(*y)));
}

#[test]
fn invalid_specs_are_errors() {
    let mut spec = DatanetSpec {
        domain: Domain::Finance,
        seed: 1,
        contributors: vec![ContributorSpec::honest(0, 8, 1.5, 1, 1)],
        text: TextParams::default(),
    };
    let e = Datanet::generate(&spec).unwrap_err();
    assert!(e.to_string().contains("c0000") && e.to_string().contains("quality"));
    spec.contributors[0].quality = 1.0;
    spec.contributors[0].behaviour = Behaviour::Copycat {
        target: ContributorId(0),
        perturb: 0.0,
    };
    assert!(Datanet::generate(&spec).is_err());
    spec.contributors[0].behaviour = Behaviour::Copycat {
        target: ContributorId(5),
        perturb: 0.0,
    };
    assert!(
        Datanet::generate(&spec)
            .unwrap_err()
            .to_string()
            .contains("does not exist")
    );
}

#[test]
fn loaders_round_trip_generated_data() {
    let net = default_net(6, Domain::Healthcare);
    let loaded = load::parse_csv("gen.csv", &write_csv(&net)).unwrap();
    assert_eq!(loaded.records.len(), net.records.len());
    assert_eq!(loaded.feature_names, net.feature_names);
    for (a, b) in net.records.iter().zip(&loaded.records) {
        assert_eq!(
            (&a.features, a.label, a.hash),
            (&b.features, b.label, b.hash)
        );
        assert_eq!(
            net.contributors[a.author.0 as usize],
            loaded.contributors[b.author.0 as usize]
        );
        assert_eq!(b.kind, RecordKind::Unverified);
    }
    let docs = load::parse_jsonl("gen.jsonl", &write_jsonl(&net)).unwrap();
    assert_eq!(docs.documents.len(), net.documents.len());
    for (a, b) in net.documents.iter().zip(&docs.documents) {
        assert_eq!(a.hash, b.hash);
        assert_eq!(net.doc_text(a), docs.doc_text(b));
        assert_eq!(
            net.contributors[a.author.0 as usize],
            docs.contributors[b.author.0 as usize]
        );
    }
    // From files, both at once, sharing contributors by name.
    let dir = std::env::temp_dir().join(format!("olsim-data-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, j) = (dir.join("d.csv"), dir.join("d.jsonl"));
    std::fs::write(&c, write_csv(&net)).unwrap();
    std::fs::write(&j, write_jsonl(&net)).unwrap();
    let both = load::load(Some(&c), Some(&j)).unwrap();
    assert_eq!(both.records.len(), net.records.len());
    assert_eq!(both.documents.len(), net.documents.len());
    assert!(both.truth.is_none());
    assert_eq!(load_csv(&c).unwrap().records, loaded.records);
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = load_csv(&dir.join("nope.csv")).unwrap_err().to_string();
    assert!(missing.contains("nope.csv"), "{missing}");
}

fn parse_error(e: LoadError) -> (String, usize, usize, String) {
    let msg = e.to_string();
    match e {
        LoadError::Parse {
            file, line, column, ..
        } => {
            assert!(
                msg.starts_with(&format!("{file}:{line}:{column}: expected ")),
                "{msg}"
            );
            (file, line, column, msg)
        }
        other => panic!("not a parse error: {other}"),
    }
}

#[test]
fn malformed_csv_names_file_line_and_column() {
    let cases: [(&str, usize, usize, &str); 7] = [
        ("a,b,label\n1,2,0\n1,x,1\n", 3, 3, "feature `b`"),
        ("a,b,label\n1,2,0\n\n1,2\n", 4, 4, "3 fields"),
        ("a,b,label\n1,2,0,9\n", 2, 7, "3 fields"),
        ("a,b,label\n1,2,7.5\n", 2, 5, "integer label"),
        ("a,b\n1,2\n", 1, 4, "`label` column"),
        ("a,\"b,label\n", 1, 11, "closing quote"),
        ("a,a,label\n", 1, 3, "unique column"),
    ];
    for (input, line, column, expect) in cases {
        let (file, l, c, msg) = parse_error(load::parse_csv("bad.csv", input).unwrap_err());
        assert_eq!((file.as_str(), l, c), ("bad.csv", line, column), "{msg}");
        assert!(msg.contains(expect), "{msg}");
    }
    let ok = load::parse_csv(
        "ok.csv",
        "x,author,label\n0.5,\"smith, j\",1\n-1e-3,bob,0\n",
    )
    .unwrap();
    assert_eq!(
        ok.contributors,
        vec!["smith, j".to_string(), "bob".to_string()]
    );
    assert_eq!(ok.records[1].features, vec![-0.001]);
}

#[test]
fn malformed_jsonl_names_file_line_and_column() {
    let input = "{\"author\":\"a\",\"text\":\"hi there\"}\n\n{\"author\":\"b\",\"text\":7}\n";
    let (file, line, column, msg) =
        parse_error(load::parse_jsonl("docs.jsonl", input).unwrap_err());
    assert_eq!((file.as_str(), line), ("docs.jsonl", 3));
    assert!(column > 1, "{msg}");
    let (_, line, _, msg) =
        parse_error(load::parse_jsonl("docs.jsonl", "{\"text\":\"x\"}").unwrap_err());
    assert_eq!(line, 1);
    assert!(msg.contains("author"), "{msg}");
    let (_, line, column, _) = parse_error(
        load::parse_jsonl("d.jsonl", "{\"author\":\"a\",\"text\":\"x\"}\n{oops}").unwrap_err(),
    );
    assert_eq!((line, column), (2, 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn generation_is_deterministic(seed in any::<u64>(), d in 0usize..4, copycat in 0usize..3, perturb in 0.0f32..0.1) {
        let domain = Domain::ALL[d];
        let pop = PopulationSpec {
            honest: 3,
            copycat,
            records: (5, 30),
            documents: (1, 6),
            copy_perturb: perturb,
            ..PopulationSpec::default()
        };
        let a = datanet(seed, domain, &pop);
        let b = datanet(seed, domain, &pop);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(&a, &b);
        let c = datanet(seed.wrapping_add(1), domain, &pop);
        prop_assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn copies_point_at_real_records_of_other_contributors(seed in any::<u64>()) {
        let pop = PopulationSpec { honest: 2, copycat: 2, records: (1, 20), ..PopulationSpec::default() };
        let net = datanet(seed, Domain::Finance, &pop);
        for r in &net.records {
            if let Some(o) = r.copy_of {
                let orig = net.records.get(o.0 as usize);
                prop_assert!(orig.is_some());
                prop_assert_ne!(orig.unwrap().author, r.author);
            }
        }
    }

    #[test]
    fn csv_round_trips_arbitrary_floats(xs in proptest::collection::vec(proptest::collection::vec(-1e6f32..1e6, 3), 1..10), label in 0u8..2) {
        let mut csv = String::from("f0,f1,f2,label,author\n");
        for x in &xs {
            csv.push_str(&format!("{},{},{},{label},someone\n", x[0], x[1], x[2]));
        }
        let net = load::parse_csv("p.csv", &csv).unwrap();
        let again = load::parse_csv("p.csv", &write_csv(&net)).unwrap();
        prop_assert_eq!(&net.records, &again.records);
        for (r, x) in net.records.iter().zip(&xs) {
            prop_assert_eq!(&r.features, x);
        }
    }
}
