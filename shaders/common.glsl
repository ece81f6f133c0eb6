// Shared GLSL helpers: number formats decoded from 32-bit words (so no shader needs 8- or 16-bit storage),
// GELU, and the token state every per-token shader reads.
#ifndef WHITTLE_COMMON_GLSL
#define WHITTLE_COMMON_GLSL

float bf16Bits(uint h) { return uintBitsToFloat(h << 16); }
float f16Bits(uint h) { return unpackHalf2x16(h).x; }

// FP8 E4M3 "fn": bias 7, subnormals m·2^-9 (0x7F/0xFF are NaN and never written by Whittle).
float e4m3(uint b) {
    const uint e = (b >> 3) & 15u, m = b & 7u;
    const float mag = e == 0u ? float(m) * (1.0 / 512.0) : (1.0 + float(m) / 8.0) * exp2(float(int(e) - 7));
    return (b & 128u) != 0u ? -mag : mag;
}

// FP4 E2M1: sign bit 3, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
float e2m1(uint c) {
    const uint m = c & 7u;
    const float mag = m < 4u ? float(m) * 0.5 : (m == 4u ? 2.0 : (m == 5u ? 3.0 : (m == 6u ? 4.0 : 6.0)));
    return (c & 8u) != 0u ? -mag : mag;
}

// tanh that stays finite for any input: some drivers build tanh from exponentials that overflow past ~88.
float safeTanh(float x) { return tanh(clamp(x, -15.0, 15.0)); }

float geluTanh(float x) {
    const float k = 0.7978845608028654;
    return 0.5 * x * (1.0 + safeTanh(k * (x + 0.044715 * x * x * x)));
}

#endif
