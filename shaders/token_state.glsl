// The per-token state the host writes before each submit (gpu/vulkan_session.cpp, TokenState): the position
// being decoded, the token id, and the RoPE cos/sin pairs of this position for both layer kinds (computed on the
// host in double, as the CPU reference does). Bind as STATE_BINDING.
layout(std430, binding = STATE_BINDING) readonly buffer TokenStateBuf {
    uint statePosition;
    uint stateToken;
    uint statePad0;
    uint statePad1;
    float stateRope[];
};
