// The token state the host writes before each submit (gpu/kernels.h, writeTokenRecord): a header
// {tokens in this submit, words per record, 0, 0}, then one record per token — the position, the token id, two
// pad words, and the RoPE cos/sin pairs of that position for both layer kinds (computed on the host in double, as
// the CPU reference does). Decode submits one token; a prefill chunk several. Bind as STATE_BINDING.
layout(std430, binding = STATE_BINDING) readonly buffer TokenStateBuf { uint stateWords[]; };

uint stateRecord(uint t) { return 4u + t * stateWords[1]; }
uint tokenPosition(uint t) { return stateWords[stateRecord(t)]; }
uint tokenId(uint t) { return stateWords[stateRecord(t) + 1u]; }
float tokenRope(uint t, uint i) { return uintBitsToFloat(stateWords[stateRecord(t) + 4u + i]); }
