# govuk-imds prompt segment for zsh. In ~/.zshrc, after PROMPT is set:  eval "$(govuk-imds prompt zsh)"
# In a shell that `govuk-imds env`, `exec` or `shell` pointed at an environment, the prompt starts with its name,
# coloured by environment (production red, staging yellow, others green), and says "locked" while it is. It reads
# one small file the daemon keeps current, with zsh's builtins: no program starts at a prompt.
zmodload -F zsh/datetime p:EPOCHSECONDS 2>/dev/null
__govuk_imds_segment() {
    local last=$? state= ends= rest colour label
    __govuk_imds_ps1=
    if [[ -n ${GOVUK_IMDS_ENVIRONMENT-} ]]; then
        [[ -r ${GOVUK_IMDS_STATE_FILE-} ]] && read -r state ends rest < $GOVUK_IMDS_STATE_FILE
        if [[ $state == unlocked && $ends == <-> && -n ${EPOCHSECONDS-} ]] && (( ends <= EPOCHSECONDS )); then
            state=locked  # the session has ended
        fi
        case $GOVUK_IMDS_ENVIRONMENT in
            (production*) colour='%B%F{red}' ;;
            (staging*) colour='%F{yellow}' ;;
            (*) colour='%F{green}' ;;
        esac
        label=${GOVUK_IMDS_ENVIRONMENT//\%/%%}
        [[ $state == unlocked ]] || label+=' locked'
        __govuk_imds_ps1="${colour}(${label})%f%b "
    fi
    return $last
}
autoload -Uz add-zsh-hook
add-zsh-hook precmd __govuk_imds_segment
setopt prompt_subst
[[ $PROMPT == *'${__govuk_imds_ps1}'* ]] || PROMPT='${__govuk_imds_ps1}'$PROMPT
