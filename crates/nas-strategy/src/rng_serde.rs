//! Serde support for the strategies' random number generator.
//!
//! `rand` 0.10's [`ChaCha8Rng`] (from the `chacha20` crate) implements no serde traits, but it
//! can export its whole state (key, stream and position in the stream: 49 bytes) and be
//! rebuilt from it. This module stores that state as a hex string, so a strategy's saved state
//! resumes the random stream exactly where it stopped. Use it on a field with
//! `#[serde(with = "nas_strategy::rng_serde")]`:
//!
//! ```
//! use rand::{Rng, SeedableRng, rngs::ChaCha8Rng};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct MyStrategy {
//!     #[serde(with = "nas_strategy::rng_serde")]
//!     rng: ChaCha8Rng,
//! }
//!
//! let mut s = MyStrategy { rng: ChaCha8Rng::seed_from_u64(7) };
//! s.rng.next_u64();
//! let saved = serde_json::to_string(&s).unwrap();
//! let mut restored: MyStrategy = serde_json::from_str(&saved).unwrap();
//! assert_eq!(s.rng.next_u64(), restored.rng.next_u64());
//! ```

use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serializer, de::Error};

/// The length of the exported state, in bytes (key 32, stream 8, word position 9).
const STATE_LEN: usize = 49;

/// Writes the generator's state as a hex string of 98 digits.
pub fn serialize<S: Serializer>(rng: &ChaCha8Rng, serializer: S) -> Result<S::Ok, S::Error> {
    let state = rng.serialize_state();
    let mut hex = String::with_capacity(2 * STATE_LEN);
    for b in state {
        hex.push_str(&format!("{b:02x}"));
    }
    serializer.serialize_str(&hex)
}

/// Reads a generator written by [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ChaCha8Rng, D::Error> {
    let hex = String::deserialize(deserializer)?;
    if hex.len() != 2 * STATE_LEN || !hex.is_ascii() {
        return Err(D::Error::custom(format!(
            "a random generator state is {} hex digits, found `{hex}`",
            2 * STATE_LEN
        )));
    }
    let mut state = [0u8; STATE_LEN];
    for (i, b) in state.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| {
            D::Error::custom(format!(
                "invalid hex digits in random generator state `{hex}`"
            ))
        })?;
    }
    Ok(ChaCha8Rng::deserialize_state(&state))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::ChaCha8Rng};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        rng: ChaCha8Rng,
    }

    #[test]
    fn round_trip_continues_the_stream_and_bad_states_are_errors() {
        let mut h = Holder {
            rng: ChaCha8Rng::seed_from_u64(3),
        };
        // Stop in the middle of a block.
        for _ in 0..37 {
            h.rng.next_u32();
        }
        let json = serde_json::to_string(&h).unwrap();
        let mut back: Holder = serde_json::from_str(&json).unwrap();
        assert!(back.rng == h.rng);
        for _ in 0..100 {
            assert_eq!(h.rng.next_u64(), back.rng.next_u64());
        }
        assert!(serde_json::from_str::<Holder>(r#"{"rng":"abc"}"#).is_err());
        let bad = format!(r#"{{"rng":"{}"}}"#, "zz".repeat(49));
        assert!(serde_json::from_str::<Holder>(&bad).is_err());
    }
}
