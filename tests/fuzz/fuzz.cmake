# Fuzzing of the RAW reader/writer (included by the top CMakeLists.txt).
#
# clang: fuzz_raw is a libFuzzer binary (with ASan and UBSan); ctest fuzz.raw_short runs
#        it for about 60 s from the seed corpus. New inputs go to a scratch corpus in the
#        build tree, crashes to fuzz_raw-crash-* there; the seed corpus is only read.
# other compilers (gcc): fuzz_raw_replay links the same harness with a small driver that
#        replays the seed corpus plus deterministic mutations of it (ctest fuzz.raw_replay),
#        with ASan/UBSan when the compiler has them.
# The harness compiles the reader and writer sources directly, so it does not depend on
# the rest of the library.

set(NGS_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
set(NGS_FUZZ_SOURCES
  ${NGS_FUZZ_DIR}/fuzz_raw.c
  ${CMAKE_SOURCE_DIR}/storage/raw_reader.c
  ${CMAKE_SOURCE_DIR}/storage/raw_writer.c)
set(NGS_FUZZ_INCLUDES ${CMAKE_SOURCE_DIR}/plugin ${CMAKE_SOURCE_DIR})

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_raw ${NGS_FUZZ_SOURCES})
  target_include_directories(fuzz_raw PRIVATE ${NGS_FUZZ_INCLUDES})
  target_compile_options(fuzz_raw PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
  target_link_options(fuzz_raw PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_raw PRIVATE m)
  set(NGS_FUZZ_SCRATCH ${CMAKE_BINARY_DIR}/fuzz_raw_corpus)
  file(MAKE_DIRECTORY ${NGS_FUZZ_SCRATCH})
  add_test(NAME fuzz.raw_short
    COMMAND fuzz_raw -max_total_time=60 -timeout=10 -rss_limit_mb=2048 -max_len=8192
            -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz_raw-
            ${NGS_FUZZ_SCRATCH} ${NGS_FUZZ_DIR}/corpus_raw)
  set_tests_properties(fuzz.raw_short PROPERTIES TIMEOUT 180 LABELS fuzz)
else()
  add_executable(fuzz_raw_replay ${NGS_FUZZ_SOURCES} ${NGS_FUZZ_DIR}/fuzz_driver.c)
  target_include_directories(fuzz_raw_replay PRIVATE ${NGS_FUZZ_INCLUDES})
  target_link_libraries(fuzz_raw_replay PRIVATE m)
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=address,undefined")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=address,undefined")
  check_c_source_compiles("int main(void) { return 0; }" NGS_FUZZ_HAVE_SANITIZERS)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NGS_FUZZ_HAVE_SANITIZERS)
    target_compile_options(fuzz_raw_replay PRIVATE -fsanitize=address,undefined
                           -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_raw_replay PRIVATE -fsanitize=address,undefined)
  endif()
  add_test(NAME fuzz.raw_replay
    COMMAND fuzz_raw_replay -n 300 ${NGS_FUZZ_DIR}/corpus_raw
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(fuzz.raw_replay PROPERTIES TIMEOUT 300 LABELS fuzz)
endif()
