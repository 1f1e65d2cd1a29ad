//! Writes the 8-bit RGB pixels the daemon decodes from each image (the `image` crate, as
//! `adasd detect` and the image sources do) as raw files, so reference scripts feed the original
//! frameworks exactly the pixels our detector sees (JPEG decoders differ by a grey level here and
//! there, and a quantized network turns that into score steps).
//!
//! `cargo run -q -p adas-system-tests --example decode_rgb -- OUT_DIR IMAGE...` writes
//! `OUT_DIR/<n>.rgb` for the n-th image and prints `<n> <width> <height> <image>` per image.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: decode_rgb OUT_DIR IMAGE...")?);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (n, path) in args.enumerate() {
        let img = image::open(&path)
            .map_err(|e| format!("{path}: {e}"))?
            .to_rgb8();
        let file = out.join(format!("{n}.rgb"));
        std::fs::write(&file, img.as_raw()).map_err(|e| format!("{}: {e}", file.display()))?;
        println!("{n} {} {} {path}", img.width(), img.height());
    }
    Ok(())
}
