# Helpers that give every project target the same warnings and test registration.

set(DRIFTLESS_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

# driftless_library(NAME SRCS a.cc b.cc DEPS x y [PUBLIC_DEPS ...])
function(driftless_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${DRIFTLESS_WARNINGS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/proto)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} ${ARG_DEPS})
endfunction()

# driftless_binary(NAME SRCS main.cc DEPS ...)
function(driftless_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${DRIFTLESS_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/proto)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# driftless_test(NAME [CORPUS] SRCS x_test.cc DEPS ... [LABELS unit|integration] [TIMEOUT s])
# Every test binary links gtest_main and is registered with CTest test by test.
# CORPUS: the tests read ../shared/corpus. They are registered only when it is there (a
# user's clone stands alone); with DRIFTLESS_REQUIRE_CORPUS (set by CI) a missing corpus is a
# configuration error, so corpus tests can never silently vanish.
function(driftless_test name)
  if(NOT DRIFTLESS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "CORPUS" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(ARG_CORPUS AND NOT EXISTS "${DRIFTLESS_CORPUS_DIR}")
    if(DRIFTLESS_REQUIRE_CORPUS)
      message(FATAL_ERROR "${name}: the test corpus ${DRIFTLESS_CORPUS_DIR} is missing "
                          "(DRIFTLESS_REQUIRE_CORPUS is set)")
    endif()
    message(STATUS "${name}: not registered (no corpus at ${DRIFTLESS_CORPUS_DIR})")
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${DRIFTLESS_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/proto)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    DRIFTLESS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DRIFTLESS_BINARY_DIR="${PROJECT_BINARY_DIR}"
    DRIFTLESS_CORPUS_DIR="${DRIFTLESS_CORPUS_DIR}"
    DRIFTLESS_TOOLS_DIR="${DRIFTLESS_TOOLS_DIR}")
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(ARG_CORPUS)
    list(APPEND ARG_LABELS corpus)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# driftless_bench(NAME SRCS x_bench.cc DEPS ...)
function(driftless_bench name)
  if(NOT DRIFTLESS_BUILD_BENCH)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${DRIFTLESS_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/proto)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  target_compile_definitions(${name} PRIVATE
    DRIFTLESS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DRIFTLESS_CORPUS_DIR="${DRIFTLESS_CORPUS_DIR}"
    DRIFTLESS_TOOLS_DIR="${DRIFTLESS_TOOLS_DIR}")
endfunction()
