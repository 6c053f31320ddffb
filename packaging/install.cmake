# packaging/install.cmake - `make install` (cmake --install) and
# `make package` (cpack, a .deb). Included at the end of CMakeLists.txt,
# once every target exists. docs/DEPLOY.md says what goes where.
#
# The destinations are resolved at install time (install_layout.cmake,
# run first), so one build installs right into any prefix: /usr/local by
# default, `cmake --install build --prefix DIR`, and /usr for the .deb.
# DESTDIR works as usual (cpack uses it: CPACK_SET_DESTDIR).

if(MOONGATE_FUZZ)
  return()
endif()

install(CODE "
  set(MG_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(MG_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
  set(MG_VERSION \"${PROJECT_VERSION}\")
  set(MG_MULTIARCH \"${CMAKE_LIBRARY_ARCHITECTURE}\")")
install(SCRIPT ${CMAKE_SOURCE_DIR}/packaging/install_layout.cmake)

# the server, and the two tools built with it: the load bot and the
# network emulator (README.md, "Breaking the network on purpose")
set(mg_programs moongate)
foreach(t moongate_bot moongate_netem)
  if(TARGET ${t})
    list(APPEND mg_programs ${t})
  endif()
endforeach()
install(TARGETS ${mg_programs} RUNTIME DESTINATION "\${MG_BINDIR}")

# libmoongate-client.so.1 (soname), .so.1.0.0 and the .so link, the header
if(TARGET moongate_client_so)
  install(TARGETS moongate_client_so
    LIBRARY DESTINATION "\${MG_LIBDIR}"
    PUBLIC_HEADER DESTINATION "\${MG_INCLUDEDIR}/moongate")
endif()
# the Lua client module: require "moongate.client"
if(TARGET moongate_lua_client)
  install(TARGETS moongate_lua_client LIBRARY DESTINATION "\${MG_LUA_CDIR}/moongate")
endif()
# lualib: require "moongate" (the server finds it beside its binary:
# core/lua/script.c, lualib_dir), and the shipped services
install(DIRECTORY ${CMAKE_SOURCE_DIR}/lualib/ DESTINATION "\${MG_LUADIR}"
  FILES_MATCHING PATTERN "*.lua")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/service/
  DESTINATION "\${MG_DATADIR}/moongate/service")
# the status page's files (config metrics; the server finds them beside its
# binary: core/main.c, www_dir)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/www/
  DESTINATION "\${MG_DATADIR}/moongate/www")
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/DEPLOY.md
  ${CMAKE_SOURCE_DIR}/docs/LUA_API.md ${CMAKE_SOURCE_DIR}/docs/SERVICES.md
  ${CMAKE_SOURCE_DIR}/docs/PROTOCOL.md
  DESTINATION "\${MG_DATADIR}/doc/moongate")

# ---- the .deb --------------------------------------------------------------
# `make package` (or `cd build && cpack`): build/package/moongate_VERSION-1_ARCH.deb
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
This package holds the server (with a systemd unit), the C client library
libmoongate-client with its header and pkg-config file, the Lua client
module, the Lua library and the shipped services.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# the packages of the libraries the binaries link (dpkg -S on each .so on
# Debian 12), lua-cjson, which moongate.json loads at run time, and
# procps for /bin/kill (the unit's ExecReload), adduser for postinst
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libc6, libluajit-5.1-2, libev4, libsodium23, lua-cjson, libhiredis0.14, libcurl4, libmicrohttpd12, procps, adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server")
# shlibs, for packages built against libmoongate-client (dpkg-shlibdeps):
# written here rather than by CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS, which
# warns about the Lua module (no soname) and pins the exact version
configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/shlibs.in
  ${CMAKE_BINARY_DIR}/packaging/deb/shlibs @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/deb/conffiles
  ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
  ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
  ${CMAKE_SOURCE_DIR}/packaging/deb/postrm
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
