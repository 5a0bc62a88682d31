# gpu/gpu.cmake - the spectral engine's build pieces, included by the top CMakeLists.txt
# before the library target exists. It extends NGSCALE_SOURCES (gpu/*.c are already
# globbed), NGSCALE_LIBS and NGSCALE_DEFINITIONS:
#   - FFTW's thread library (the CPU backend plans with fftw_plan_with_nthreads);
#   - CUDA when a toolkit is found and NGSCALE_CUDA is ON: the module libngscale-cuda.so
#     (gpu/spectrum_cuda.cu, linked to cuFFT and the CUDA runtime, beside the library and
#     installed with it) and NGSCALE_HAVE_CUDA=1. The library does not link CUDA: it loads
#     the module when a spectrum asks for the GPU (gpu/spectrum_cuda_load.c), and without
#     CUDA that file answers "built without CUDA" at run time.

find_library(FFTW3_THREADS_LIBRARY NAMES fftw3_threads
  HINTS ${FFTW3_LIBRARY_DIRS} DOC "FFTW (double) thread support library")
if(NOT FFTW3_THREADS_LIBRARY)
  message(FATAL_ERROR "libfftw3_threads not found (Debian: apt-get install libfftw3-dev)")
endif()
list(APPEND NGSCALE_LIBS ${FFTW3_THREADS_LIBRARY})

option(NGSCALE_CUDA "Build the cuFFT backend of the spectral engine when a CUDA toolkit is found" ON)

set(NGSCALE_HAVE_CUDA OFF)
if(NGSCALE_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Before enable_language(), which would otherwise pick the compiler's default.
    # H100/H200 are sm_90; sm_80 covers A100. The .cu has no kernels of its own (cuFFT
    # brings its own), so this only matters for future device code.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures for ngscale")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cufft)
    set(NGSCALE_HAVE_CUDA ON)
  else()
    message(STATUS "ngscale: no CUDA toolkit with cuFFT found: the spectral engine is CPU-only (FFTW)")
  endif()
else()
  message(STATUS "ngscale: NGSCALE_CUDA=OFF: the spectral engine is CPU-only (FFTW)")
endif()

if(NGSCALE_HAVE_CUDA)
  message(STATUS "ngscale: cuFFT backend on (CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  if(NOT DEFINED CMAKE_CUDA_STANDARD)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  endif()
  # One CUDA runtime: the shared one we link, not CMake's default static copy on top.
  if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  endif()
  list(APPEND NGSCALE_DEFINITIONS NGSCALE_HAVE_CUDA=1
       NGSCALE_CUDA_MODULE_DIR="${CMAKE_INSTALL_FULL_LIBDIR}")

  # The top file's add_compile_options() (-Wall -Wextra, sanitizers, -Werror) are
  # host-compiler flags that nvcc rejects. Rewrite the directory's options so C gets
  # them unchanged and CUDA gets them through -Xcompiler. nvcc splits -Xcompiler
  # arguments at commas, so "-fsanitize=address,undefined" becomes one flag per value.
  # Options added after this point (or already generator expressions) are left alone.
  get_directory_property(_ngs_opts COMPILE_OPTIONS)
  set(_ngs_new_opts "")
  foreach(_opt IN LISTS _ngs_opts)
    if(_opt MATCHES "^\\$<")
      list(APPEND _ngs_new_opts "${_opt}")
      continue()
    endif()
    list(APPEND _ngs_new_opts "$<$<NOT:$<COMPILE_LANGUAGE:CUDA>>:${_opt}>")
    if(_opt MATCHES "^(-[^=]+=)(.*,.*)$")
      set(_prefix "${CMAKE_MATCH_1}")
      string(REPLACE "," ";" _values "${CMAKE_MATCH_2}")
      foreach(_v IN LISTS _values)
        list(APPEND _ngs_new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_prefix}${_v}>")
      endforeach()
    else()
      list(APPEND _ngs_new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_opt}>")
    endif()
  endforeach()
  set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_ngs_new_opts}")
  unset(_ngs_opts)
  unset(_ngs_new_opts)
  # after the rewrite: a target takes the directory's options when it is created
  add_library(ngscale_cuda MODULE ${CMAKE_CURRENT_LIST_DIR}/spectrum_cuda.cu)
  target_include_directories(ngscale_cuda PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/plugin)
  target_link_libraries(ngscale_cuda PRIVATE CUDA::cufft CUDA::cudart)
  # Beside ngscale and libngscale (the build folder): the loader looks there first.
  # Linked by the C compiler: spectrum_cuda.cu needs no C++ runtime (the CUDA host
  # linker, g++, would bring libstdc++ for nothing).
  set_target_properties(ngscale_cuda PROPERTIES OUTPUT_NAME ngscale-cuda PREFIX "lib"
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR} CUDA_VISIBILITY_PRESET hidden LINKER_LANGUAGE C)
  install(TARGETS ngscale_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
