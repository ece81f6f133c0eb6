// Workgroup-wide sum and max of one float per invocation; every invocation gets the result. Needs WG_SIZE
// defined and must be reached by the whole workgroup. With USE_SUBGROUP the subgroups reduce first
// (GL_KHR_shader_subgroup_arithmetic); without it, a shared-memory tree (the fallback for any device).
#ifndef WHITTLE_REDUCE_GLSL
#define WHITTLE_REDUCE_GLSL

shared float reduceScratch[WG_SIZE];

#ifdef USE_SUBGROUP
float workgroupSum(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) reduceScratch[gl_SubgroupID] = v;
    barrier();
    float total = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; ++s) total += reduceScratch[s];
    barrier();
    return total;
}
float workgroupMax(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) reduceScratch[gl_SubgroupID] = v;
    barrier();
    float best = reduceScratch[0];
    for (uint s = 1; s < gl_NumSubgroups; ++s) best = max(best, reduceScratch[s]);
    barrier();
    return best;
}
#else
float workgroupSum(float v) {
    const uint t = gl_LocalInvocationID.x;
    reduceScratch[t] = v;
    barrier();
    for (uint s = WG_SIZE / 2; s > 0; s >>= 1) {
        if (t < s) reduceScratch[t] += reduceScratch[t + s];
        barrier();
    }
    const float total = reduceScratch[0];
    barrier();
    return total;
}
float workgroupMax(float v) {
    const uint t = gl_LocalInvocationID.x;
    reduceScratch[t] = v;
    barrier();
    for (uint s = WG_SIZE / 2; s > 0; s >>= 1) {
        if (t < s) reduceScratch[t] = max(reduceScratch[t], reduceScratch[t + s]);
        barrier();
    }
    const float best = reduceScratch[0];
    barrier();
    return best;
}
#endif

#endif
