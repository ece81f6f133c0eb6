// The one list of compute shaders: WHITTLE_SHADER(EnumName, file stem in shaders/, "DEFINES"). gpu/CMakeLists.txt
// reads the entries from here and compiles <stem>.comp once per entry with -D for each space-separated define
// (a variant), and gpu/shaders.h/.cpp expand it into the ShaderId enum, the names and the embedded SPIR-V.
// Variants exist where an optional device feature changes the SPIR-V's capabilities (subgroup arithmetic);
// everything else a device may lack is chosen with specialization constants at pipeline creation.
WHITTLE_SHADER(Scale, scale, "")
WHITTLE_SHADER(ReduceSum, reduce_sum, "")
WHITTLE_SHADER(MatvecRows, matvec_rows, "")
WHITTLE_SHADER(MatvecGptq, matvec_gptq, "")
WHITTLE_SHADER(MatmulRows, matmul_rows, "")
WHITTLE_SHADER(MatmulGptq, matmul_gptq, "")
WHITTLE_SHADER(RmsNorm, rms_norm, "")
WHITTLE_SHADER(RmsNormSubgroup, rms_norm, "USE_SUBGROUP")
WHITTLE_SHADER(HeadNormRope, head_norm_rope, "")
WHITTLE_SHADER(Attention, attention, "")
WHITTLE_SHADER(AttentionSubgroup, attention, "USE_SUBGROUP")
WHITTLE_SHADER(GeluMul, gelu_mul, "")
WHITTLE_SHADER(PleCombine, ple_combine, "")
WHITTLE_SHADER(Softcap, softcap, "")
WHITTLE_SHADER(GatherRow, gather_row, "")
WHITTLE_SHADER(Argmax, argmax, "")
WHITTLE_SHADER(Sample, sample, "")
WHITTLE_SHADER(SampleSubgroup, sample, "USE_SUBGROUP")
WHITTLE_SHADER(Copy, copy, "")
