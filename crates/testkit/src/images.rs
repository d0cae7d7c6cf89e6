//! Image files a hostile client sends: a few bytes that claim many pixels.

/// A GIF whose logical screen is `side`² but whose one frame is a single
/// pixel: a few dozen bytes that decode to a whole screen of pixels.
pub fn screen_gif(side: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(side.to_le_bytes());
    gif.extend(side.to_le_bytes());
    gif.extend([0x80, 0, 0]); // a global colour table of 2 entries
    gif.extend([0, 0, 0, 255, 255, 255]);
    gif.push(0x2c); // image descriptor: 1x1 at (0, 0), no local table
    gif.extend([0, 0, 0, 0, 1, 0, 1, 0, 0]);
    // LZW, minimum code size 2: clear (4), index 0, end (5) in 3-bit codes.
    gif.extend([2, 2, 0x44, 0x01, 0]);
    gif.push(0x3b);
    gif
}

/// The start of a baseline greyscale JPEG of `side`² whose data stops after
/// 2,000 bytes of its scan (about 2 KB in all), without its end marker: what
/// a cut-off upload looks like. Tables are minimal (one code each: every
/// block is flat grey), so the decoder would happily fill the rest in.
pub fn truncated_jpeg(side: u16) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend([0xFF, 0xDB, 0, 67, 0]); // DQT: table 0, all ones
    jpeg.extend([1; 64]);
    jpeg.extend([0xFF, 0xC0, 0, 11, 8]); // SOF0: 8 bits
    jpeg.extend(side.to_be_bytes());
    jpeg.extend(side.to_be_bytes());
    jpeg.extend([1, 1, 0x11, 0]); // one component, 1x1 sampling, table 0
    for class in [0x00, 0x10] {
        // DHT: one 1-bit code for symbol 0 (DC: no difference; AC: end of block)
        jpeg.extend([0xFF, 0xC4, 0, 20, class, 1]);
        jpeg.extend([0; 15]);
        jpeg.push(0);
    }
    jpeg.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]); // SOS
    jpeg.extend([0; 2000]);
    jpeg
}
