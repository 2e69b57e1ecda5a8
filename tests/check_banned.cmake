# SPDX-License-Identifier: Apache-2.0
# Fails when our C code calls a function STYLE.md §5 bans.
file(GLOB_RECURSE srcs ${ROOT}/common/*.[ch] ${ROOT}/dnsd/*.[ch] ${ROOT}/health/*.[ch]
     ${ROOT}/lbproxy/*.[ch] ${ROOT}/ctl/*.[ch])
set(bad "")
foreach(f ${srcs})
    file(STRINGS ${f} lines REGEX "(^|[^a-z_0-9.>])(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)[ \t]*\\(")
    foreach(l ${lines})
        list(APPEND bad "${f}: ${l}")
    endforeach()
endforeach()
if(bad)
    list(JOIN bad "\n" msg)
    message(FATAL_ERROR "banned functions used:\n${msg}")
endif()
