// The one list of compute shaders: WHITTLE_SHADER(EnumName, file stem in shaders/). gpu/CMakeLists.txt
// reads the stems from here to compile each <stem>.comp, and gpu/shaders.h/.cpp expand it into the
// ShaderId enum, the names and the embedded SPIR-V. Add a shader by adding one line.
WHITTLE_SHADER(Scale, scale)
WHITTLE_SHADER(ReduceSum, reduce_sum)
