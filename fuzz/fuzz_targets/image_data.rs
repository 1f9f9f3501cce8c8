//! Feeds arbitrary bytes to the image-file readers of `nas-supernet`: IDX (MNIST and
//! Fashion-MNIST, gzipped or not) and CIFAR-10/100's binary batches.
//!
//! The first byte picks the reader; for IDX the next two give where the image file ends and
//! the label file begins. A reader must never panic, and what it accepts must be consistent
//! (as many labels as images, every label below the class count). Gzip bombs meet the
//! decompression limit (`MAX_DECOMPRESSED_BYTES`). See docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_supernet::data::ImageDataset;

fn consistent(d: &ImageDataset) {
    let labels = d.labels();
    assert_eq!(labels.len(), d.len());
    assert!(labels.iter().all(|&l| (l as usize) < d.num_classes()));
    let [c, h, w] = d.shape();
    assert!(c > 0 && h > 0 && w > 0, "{:?}", d.shape());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let result = match which % 3 {
        0 => {
            if rest.len() < 2 {
                return;
            }
            let cut = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            let body = &rest[2..];
            let cut = cut.min(body.len());
            let (images, labels) = body.split_at(cut);
            ImageDataset::from_idx_bytes("fuzz", images, labels, 10)
        }
        1 => {
            let half = rest.len() / 2;
            ImageDataset::cifar10_from_bytes(&[&rest[..half], &rest[half..]])
        }
        _ => ImageDataset::cifar100_from_bytes(rest),
    };
    if let Ok(d) = result {
        consistent(&d);
    }
});
