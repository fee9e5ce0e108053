#!/usr/bin/env python3
"""test_logmel.py - the engine's log-mel front end (engine/data/logmel.h, through logmel_dump)
against a numpy reference written from the definition: centred frames with zero padding, a
periodic Hann window, |rfft|^2, triangular HTK-mel filters from 0 Hz to Nyquist, then
(ln(P + 1e-6) + ln(1e6)) / 26. A sine's spectrogram must match within float32 rounding, and its
loudest band must be the one whose centre is nearest the tone.
Usage: test_logmel.py LOGMEL_DUMP
"""
import subprocess, sys

try:
    import numpy as np
except ImportError:
    print("SKIP: python3-numpy is not installed")
    sys.exit(77)


def reference(x, rate, n_fft, hop, mels):
    n = len(x)
    frames = n // hop
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft)])
    spec = np.stack([np.abs(np.fft.rfft(padded[t * hop:t * hop + n_fft] * win)) ** 2
                     for t in range(frames)], axis=1)                      # (bins, frames)
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = hz(np.linspace(mel(0), mel(rate / 2), mels + 2))
    f = np.arange(n_fft // 2 + 1) * rate / n_fft
    fb = np.zeros((mels, len(f)))
    for m in range(mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.maximum(0, np.minimum((f - lo) / (c - lo), (hi - f) / (hi - c)))
    return (np.log(fb @ spec + 1e-6) + np.log(1e6)) / 26, edges[1:-1]


def main():
    dump = sys.argv[1]
    failures = 0
    for rate, n_fft, hop, mels, freq, amp, n in [(16000, 400, 160, 40, 1000.0, 0.5, 16000),
                                                 (8000, 256, 80, 24, 440.0, 0.1, 4000)]:
        out = subprocess.run([dump, str(rate), str(n_fft), str(hop), str(mels), str(freq), str(amp),
                              str(n)], check=True, capture_output=True, text=True).stdout.split()
        m, fr = int(out[0]), int(out[1])
        got = np.array(out[2:], dtype=np.float64).reshape(m, fr)
        x = (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32).astype(np.float64)
        want, centres = reference(x, rate, n_fft, hop, mels)
        err = np.max(np.abs(got - want))
        loud = int(np.argmax(got[:, fr // 2]))
        nearest = int(np.argmin(np.abs(centres - freq)))
        print(f"{rate} Hz, {mels} mels, {freq} Hz sine: max |engine - numpy| = {err:.2e}; "
              f"loudest band {loud}, nearest centre {nearest}")
        if not err < 2e-5:
            print(f"FAIL: the spectrograms differ by {err}")
            failures += 1
        if abs(loud - nearest) > 1:
            print(f"FAIL: loudest band {loud}, the tone's is {nearest}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
