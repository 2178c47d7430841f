# write_if_changed(PATH CONTENT): writes CONTENT to PATH only when it differs from what is there,
# so a generated source that did not change is not recompiled. Used by the -P scripts that embed
# files into turnpike-control (embed_migrations.cmake, dashboard/embed_dashboard.cmake).
function(write_if_changed path content)
  if(EXISTS ${path})
    file(READ ${path} old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE ${path} "${content}")
endfunction()
