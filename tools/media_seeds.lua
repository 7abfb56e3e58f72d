-- Writes the seed corpora of the media fuzz targets (csrc/fuzz/corpus/image, mp4,
-- audio): one small file of each format the sniffer reads, built byte by byte.
--   lua5.4 tools/media_seeds.lua        (from the checkout's root)
package.path = "./?.lua;" .. package.path
local bytes = require "spec.support.media_bytes"
local be32, be16, le32, le16, zeros = bytes.be32, bytes.be16, bytes.le32, bytes.le16, bytes.zeros
local box, ftyp, moov, ogg_page = bytes.box, bytes.ftyp, bytes.moov, bytes.ogg_page

-- the first byte of an audio or mp4 seed picks the head's length (0x80: all of it)
local seeds = {
  image = {
    png = "\137PNG\r\n\26\n" .. be32(13) .. "IHDR" .. be32(640) .. be32(480) .. "\8\2\0\0\0",
    jpeg = "\255\216\255\224" .. be16(16) .. "JFIF\0" .. zeros(9) .. "\255\192" .. be16(17) .. "\8" .. be16(1080)
      .. be16(1920) .. "\3\1\34\0\2\17\1\3\17\1\255\217",
    gif = "GIF89a" .. le16(320) .. le16(200) .. "\0\0\0;",
    webp_vp8 = "RIFF" .. le32(30) .. "WEBPVP8 " .. le32(10) .. "\0\0\0\157\1\42" .. le16(1024) .. le16(768),
    webp_vp8l = "RIFF" .. le32(30) .. "WEBPVP8L" .. le32(5) .. "\47" .. le32(99 + 49 * 16384),
    webp_vp8x = "RIFF" .. le32(30) .. "WEBPVP8X" .. le32(10) .. zeros(4) .. "\127\7\0\55\4\0",
  },
  mp4 = {
    mp4 = "\128" .. ftyp("isom") .. moov(0, 1000, 6500, 1280, 720) .. box("mdat", zeros(32)),
    mov_v1_avc1 = "\128" .. ftyp("qt  ") .. moov(1, 600, 9000, 0, 0, "avc1") .. box("mdat", zeros(16)),
    moov_at_end = "\2" .. ftyp("mp42") .. box("mdat", zeros(40)) .. moov(0, 90000, 900000, 720, 1280, "hvc1"),
    mdat_64bit = "\3" .. ftyp("isom") .. be32(1) .. "mdat" .. be32(0) .. be32(24) .. zeros(8)
      .. moov(0, 1000, 4000, 1080, 1920) .. be32(0) .. "free",
    m4a = "\192" .. ftyp("M4A ") .. moov(0, 44100, 441000, 0, 0) .. box("mdat", zeros(8)),
  },
  audio = {
    wav = "\128RIFF" .. le32(0) .. "WAVEfmt " .. le32(16) .. "\1\0\2\0" .. le32(44100) .. le32(176400)
      .. "\4\0\16\0data" .. le32(64) .. zeros(64),
    mp3_id3_cbr = "\128ID3\4\0\0\0\0\0\20" .. zeros(20) .. "\255\251\144\0" .. zeros(60),
    mp3_xing = "\128\255\251\144\192" .. zeros(17) .. "Xing\0\0\0\3" .. be32(383) .. zeros(40),
    mp3_vbri = "\128\255\243\144\0" .. zeros(32) .. "VBRI\0\1\0\0\0\0\0\0\0\0" .. be32(1000) .. zeros(20),
    adts = "\128\255\241\80\128\2\31\252" .. zeros(16),
    ogg_vorbis = "\8" .. ogg_page(0, 30) .. "\1vorbis" .. zeros(5) .. le32(44100) .. zeros(14) .. zeros(30)
      .. ogg_page(44100 * 7, 0),
    ogg_opus = "\128" .. ogg_page(0, 19) .. "OpusHead\1\2" .. le16(312) .. le32(44100) .. zeros(3)
      .. ogg_page(96312, 0),
  },
}

for target, files in pairs(seeds) do
  for name, content in pairs(files) do
    local path = "csrc/fuzz/corpus/" .. target .. "/" .. name
    local f = assert(io.open(path, "wb"))
    assert(f:write(content))
    assert(f:close())
  end
end
