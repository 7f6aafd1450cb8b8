use crate::input::{
    ExtractOptions, InputFormat, InputOptions, extract_addresses, parse_address, read_inputs,
};

/// xorshift64: deterministic, so a failing case can be reproduced from its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

const ADDRESSY: &[u8] = b"0123456789abcdefABCDEF.:[]%/-# ,;|\t\"'\r\n\xff\xc3x{}()h";

#[test]
fn parse_address_never_panics() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let all_bytes: Vec<u8> = (0..=255).collect();
    for round in 0..20_000 {
        let alphabet = if round % 2 == 0 { ADDRESSY } else { &all_bytes };
        let len = (random.next() % 48) as usize;
        let bytes = random.bytes(len, alphabet);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_address(&text);
        let mut found = Vec::new();
        extract_addresses(&bytes, &mut found);
        assert!(found.len() <= text.len(), "input {text:?}");
    }
}

#[test]
fn read_inputs_survives_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(0x1234_5678_9abc_def1);
    let all_bytes: Vec<u8> = (0..=255).collect();
    let prefixes: [&[u8]; 6] = [
        b"",
        b"\x1f\x8b",
        b"\x28\xb5\x2f\xfd",
        b"\xef\xbb\xbfip,x\n",
        b"#separator \\x\n#fields\ta\tb\n#types\taddr\tset[addr]\n",
        b"{\"a\":{\"b\":",
    ];
    let formats = [InputFormat::Auto, InputFormat::Csv, InputFormat::Text];

    for round in 0..300u64 {
        let alphabet = if round % 2 == 0 { ADDRESSY } else { &all_bytes };
        let len = (random.next() % 4096) as usize;
        let mut content = prefixes[round as usize % prefixes.len()].to_vec();
        content.extend(random.bytes(len, alphabet));
        let path = dir.path().join(format!("garbage-{round}"));
        std::fs::write(&path, &content).unwrap();

        // Every fifth round reads the garbage as a log, with defang markers rewritten in
        // every tenth.
        let extract = (round % 5 == 0).then(|| ExtractOptions {
            json_fields: vec!["a.b".to_string()],
            refang: round % 10 == 0,
        });
        let options = InputOptions {
            paths: vec![path],
            format: formats[(round % 3) as usize],
            extract,
            ..InputOptions::default()
        };
        // Errors are fine (corrupt compressed data, no IP column); panics are not.
        if let Ok(stats) = read_inputs(&options, &mut |_| true) {
            let parts = stats.blank_values
                + stats.invalid_values
                + stats.duplicate_values
                + stats.skipped_addresses
                + stats.lookup_addresses;
            assert_eq!(stats.values_read, parts, "round {round}");
        }
    }
}
