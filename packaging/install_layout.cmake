# packaging/install_layout.cmake - run at INSTALL time (install(SCRIPT) in
# packaging/install.cmake), not at configure time: the layout follows the
# prefix the install is for, so `cmake --install build --prefix DIR`,
# `make install PREFIX=DIR` and cpack (prefix /usr) each get theirs from
# one build directory. It sets the MG_* directories that the install
# rules after it use (DESTINATION "\${MG_LIBDIR}"...) and installs the
# files generated for that prefix: the pkg-config file, the systemd unit,
# the configuration. GNUInstallDirs' rules, applied to the install's
# prefix:
#
#   prefix       libdir                  sysconfdir      state directory
#   /usr         lib/<multiarch>         /etc            /var/lib/moongate
#   /usr/local   lib                     /usr/local/etc  /var/lib/moongate
#   other        lib                     PREFIX/etc      PREFIX/var/lib/moongate
#
# Variables set by install(CODE) before this script: MG_SOURCE_DIR,
# MG_BINARY_DIR, MG_VERSION, MG_MULTIARCH.
#
# It is registered once per component (server, lib, dev: install.cmake):
# a component's install (cpack, one .deb each) runs it once and gets only
# that component's generated files (CMAKE_INSTALL_COMPONENT); an install
# of everything runs it once too (the later registrations return).

if(MG_LAYOUT_DONE)
  return()
endif()
set(MG_LAYOUT_DONE ON)
if(CMAKE_INSTALL_COMPONENT)
  set(mg_comp "${CMAKE_INSTALL_COMPONENT}")
else()
  set(mg_comp all)
endif()

set(MG_PREFIX "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" MG_PREFIX "${MG_PREFIX}")
if(MG_PREFIX STREQUAL "")
  set(MG_PREFIX "/")
endif()

set(MG_BINDIR bin)
set(MG_INCLUDEDIR include)
set(MG_DATADIR share)
if(MG_PREFIX STREQUAL "/usr" AND MG_MULTIARCH)
  set(MG_LIBDIR "lib/${MG_MULTIARCH}")
else()
  set(MG_LIBDIR lib)
endif()
if(MG_PREFIX STREQUAL "/usr")
  set(MG_SYSCONFDIR_FULL /etc)
else()
  set(MG_SYSCONFDIR_FULL "${MG_PREFIX}/etc")
endif()
if(MG_PREFIX STREQUAL "/usr" OR MG_PREFIX STREQUAL "/usr/local")
  set(MG_STATEDIR_FULL /var/lib/moongate)
else()
  set(MG_STATEDIR_FULL "${MG_PREFIX}/var/lib/moongate")
endif()
foreach(d BINDIR INCLUDEDIR DATADIR LIBDIR)
  set(MG_${d}_FULL "${MG_PREFIX}/${MG_${d}}")
endforeach()
set(MG_DOCDIR_FULL "${MG_DATADIR_FULL}/doc/moongate")
# where the Lua modules go: LuaJIT's default package.path and cpath
# include PREFIX/share/lua/5.1 and PREFIX/lib/lua/5.1 (or, for /usr,
# /usr/lib/<multiarch>/lua/5.1), so `require "moongate.client"` works
# with no LUA_PATH for the two standard prefixes
set(MG_LUADIR "${MG_DATADIR}/lua/5.1")
set(MG_LUA_CDIR "${MG_LIBDIR}/lua/5.1")

# The generated files: a directory per install root, so two installs
# from one build (a test, a package) do not write each other's.
string(MD5 key "$ENV{DESTDIR}|${MG_PREFIX}")
set(gen "${MG_BINARY_DIR}/packaging/gen-${key}")
file(MAKE_DIRECTORY "${gen}")

configure_file("${MG_SOURCE_DIR}/packaging/moongate-client.pc.in"
  "${gen}/moongate-client.pc" @ONLY)
configure_file("${MG_SOURCE_DIR}/packaging/moongate.service.in"
  "${gen}/moongate.service" @ONLY)

# The configuration: config.lua of the source tree (what `make run` uses)
# with its three paths made absolute for this prefix. Each must be found:
# a change to config.lua that breaks this fails the install, not the
# server at its first start.
file(READ "${MG_SOURCE_DIR}/config.lua" conf)
foreach(pair
    "service_path = { \"service\" }|service_path = { \"${MG_DATADIR_FULL}/moongate/service\" }"
    "secrets = \"moongate.secret\"|secrets = \"${MG_STATEDIR_FULL}/moongate.secret\""
    "admin = \"unix:moongate.admin\"|admin = \"unix:${MG_STATEDIR_FULL}/admin\"")
  string(FIND "${pair}" "|" bar)
  string(SUBSTRING "${pair}" 0 ${bar} from)
  math(EXPR bar "${bar} + 1")
  string(SUBSTRING "${pair}" ${bar} -1 to)
  string(FIND "${conf}" "${from}" at)
  if(at LESS 0)
    message(FATAL_ERROR "install: config.lua has no '${from}' to make "
      "absolute (packaging/install_layout.cmake)")
  endif()
  string(REPLACE "${from}" "${to}" conf "${conf}")
endforeach()
string(REPLACE "-- moongate configuration:"
  "-- moongate configuration (installed for ${MG_PREFIX}; docs/DEPLOY.md):"
  conf "${conf}")
file(WRITE "${gen}/config.lua" "${conf}")

if(mg_comp STREQUAL "all" OR mg_comp STREQUAL "dev")
  file(INSTALL DESTINATION "${MG_LIBDIR_FULL}/pkgconfig" TYPE FILE
    FILES "${gen}/moongate-client.pc")
endif()
if(NOT (mg_comp STREQUAL "all" OR mg_comp STREQUAL "server"))
  return() # (the lib and dev components: nothing more)
endif()
file(INSTALL DESTINATION "${MG_PREFIX}/lib/systemd/system" TYPE FILE
  FILES "${gen}/moongate.service")
# the sample, always current; the live config only when there is none
# (a reinstall keeps the operator's)
file(INSTALL DESTINATION "${MG_DATADIR_FULL}/moongate" TYPE FILE
  RENAME config.lua.example FILES "${gen}/config.lua")
if(EXISTS "$ENV{DESTDIR}${MG_SYSCONFDIR_FULL}/moongate/config.lua")
  message(STATUS "Keeping: $ENV{DESTDIR}${MG_SYSCONFDIR_FULL}/moongate/config.lua"
    " (the new sample: ${MG_DATADIR_FULL}/moongate/config.lua.example)")
else()
  file(INSTALL DESTINATION "${MG_SYSCONFDIR_FULL}/moongate" TYPE FILE
    FILES "${gen}/config.lua")
endif()

# The state directory (the secrets file, the admin socket). A package
# (DESTDIR set) outside the prefix leaves it to the systemd unit
# (StateDirectory=moongate); a plain install makes it so that the server
# starts by hand with the installed config.
string(FIND "${MG_STATEDIR_FULL}/" "${MG_PREFIX}/" under)
if(NOT "$ENV{DESTDIR}" STREQUAL "" AND NOT under EQUAL 0)
  message(STATUS "State directory ${MG_STATEDIR_FULL}: made by the systemd unit")
else()
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${MG_STATEDIR_FULL}")
  execute_process(COMMAND chmod 0700 "$ENV{DESTDIR}${MG_STATEDIR_FULL}")
  message(STATUS "Up-to-date: $ENV{DESTDIR}${MG_STATEDIR_FULL} (state directory)")
endif()
