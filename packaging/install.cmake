# packaging/install.cmake - `make install` (cmake --install) and
# `make package` (cpack, a .deb). Included at the end of CMakeLists.txt,
# once every target exists. docs/DEPLOY.md says what goes where.
#
# The destinations are resolved at install time (install_layout.cmake,
# run first), so one build installs right into any prefix: /usr/local by
# default, `cmake --install build --prefix DIR`, and /usr for the .deb.
# DESTDIR works as usual (cpack uses it: CPACK_SET_DESTDIR).
#
# Three components, one .deb each (Debian's split for a C library):
#   server  moongate: the binaries, lualib, the services, www, the unit,
#           the configuration, the docs, the Lua client module
#   lib     libmoongate-client1: the shared library (runtime)
#   dev     libmoongate-client-dev: the header, the .so link, pkg-config
# `make install` (no component) installs all three.

if(MOONGATE_FUZZ)
  return()
endif()

# the layout first, in each component (a component's install runs only
# its own rules); install_layout.cmake runs once when all are installed
foreach(comp server lib dev)
  install(CODE "
    set(MG_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
    set(MG_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
    set(MG_VERSION \"${PROJECT_VERSION}\")
    set(MG_MULTIARCH \"${CMAKE_LIBRARY_ARCHITECTURE}\")" COMPONENT ${comp})
  install(SCRIPT ${CMAKE_SOURCE_DIR}/packaging/install_layout.cmake COMPONENT ${comp})
endforeach()

# the server, and the two tools built with it: the load bot and the
# network emulator (README.md, "Breaking the network on purpose")
set(mg_programs moongate)
foreach(t moongate_bot moongate_netem)
  if(TARGET ${t})
    list(APPEND mg_programs ${t})
  endif()
endforeach()
install(TARGETS ${mg_programs} RUNTIME DESTINATION "\${MG_BINDIR}" COMPONENT server)

# libmoongate-client.so.1 (soname), .so.1.0.0 and the .so link, the header
if(TARGET moongate_client_so)
  install(TARGETS moongate_client_so
    LIBRARY DESTINATION "\${MG_LIBDIR}" COMPONENT lib NAMELINK_COMPONENT dev
    PUBLIC_HEADER DESTINATION "\${MG_INCLUDEDIR}/moongate" COMPONENT dev)
endif()
# the Lua client module: require "moongate.client"
if(TARGET moongate_lua_client)
  install(TARGETS moongate_lua_client LIBRARY DESTINATION "\${MG_LUA_CDIR}/moongate"
    COMPONENT server)
endif()
# lualib: require "moongate" (the server finds it beside its binary:
# core/lua/script.c, lualib_dir), and the shipped services
install(DIRECTORY ${CMAKE_SOURCE_DIR}/lualib/ DESTINATION "\${MG_LUADIR}"
  COMPONENT server FILES_MATCHING PATTERN "*.lua")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/service/
  DESTINATION "\${MG_DATADIR}/moongate/service" COMPONENT server)
# the status page's files (config metrics; the server finds them beside its
# binary: core/main.c, www_dir)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/www/
  DESTINATION "\${MG_DATADIR}/moongate/www" COMPONENT server)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/DEPLOY.md
  ${CMAKE_SOURCE_DIR}/docs/LUA_API.md ${CMAKE_SOURCE_DIR}/docs/SERVICES.md
  ${CMAKE_SOURCE_DIR}/docs/PROTOCOL.md
  DESTINATION "\${MG_DATADIR}/doc/moongate" COMPONENT server)

# ---- the .debs -------------------------------------------------------------
# `make package` (or `cd build && cpack`): in build/package/,
# moongate_VERSION-1_ARCH.deb, libmoongate-client1_VERSION-1_ARCH.deb and
# libmoongate-client-dev_VERSION-1_ARCH.deb
set(MOONGATE_PACKAGE_CONTACT "moongate maintainers <maintainers@localhost>"
  CACHE STRING "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME moongate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${MOONGATE_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "game network server: KCP sessions over UDP and TCP, game logic in Lua")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"moongate owns the sockets, the KCP reliable-UDP protocol and authenticated,
encrypted sessions that survive address changes and outages; LuaJIT
services decide the game's policy (login, rooms, state and frame sync) and
are hot-reloaded without dropping players.
.
This package holds the server (with a systemd unit), the Lua library, the
shipped services, the Lua client module and the status page. The C client
library is libmoongate-client1 (libmoongate-client-dev to build against).")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server lib dev)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME moongate)
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libmoongate-client1)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libmoongate-client-dev)
set(CPACK_DEBIAN_SERVER_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION_SUMMARY}
${CPACK_DEBIAN_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_LIB_DESCRIPTION "moongate's C client library (runtime)
The client side of moongate's sessions, for game clients written in C or
anything that calls C: KCP over UDP with TCP as the fallback, the pinned
server key, resume across address changes, moves.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "moongate's C client library (development files)
The header moongate/client.h, the libmoongate-client.so link and the
pkg-config file moongate-client.pc, to build a game client against
libmoongate-client1.")
# (each description's first line is its package's synopsis: without
# IGNORE, CPackDeb puts the summary above every component's description)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY IGNORE)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# the packages of the libraries the binaries link (dpkg -S on each .so on
# Debian 12), lua-cjson, which moongate.json loads at run time, and
# procps for /bin/kill (the unit's ExecReload), adduser for postinst
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS
  "libc6, libluajit-5.1-2, libev4, libsodium23, lua-cjson, libhiredis0.14, libcurl4, libmicrohttpd12, procps, adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_SUGGESTS "redis-server")
set(CPACK_DEBIAN_LIB_PACKAGE_DEPENDS "libc6, libsodium23")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libmoongate-client1 (= ${PROJECT_VERSION}-1)")
# shlibs, for packages built against libmoongate-client (dpkg-shlibdeps):
# written here rather than by CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS, which
# warns about the Lua module (no soname) and pins the exact version
configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/shlibs.in
  ${CMAKE_BINARY_DIR}/packaging/deb/shlibs @ONLY)
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/deb/conffiles
  ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
  ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
  ${CMAKE_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/deb/triggers
  ${CMAKE_BINARY_DIR}/packaging/deb/shlibs)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# The package installs for /usr, whatever the build's CMAKE_INSTALL_PREFIX:
# with CPACK_SET_DESTDIR, cpack installs with DESTDIR=its staging
# directory and the prefix CPACK_INSTALL_PREFIX, so install_layout.cmake
# sees /usr and picks the Debian layout (lib/<multiarch>, /etc).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
set(CPACK_STRIP_FILES OFF)
include(CPack)
